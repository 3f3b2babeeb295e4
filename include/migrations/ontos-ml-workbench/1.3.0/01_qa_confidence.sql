-- 1.3.0: a confidence per QA pair, computed from the answer's length.
ALTER TABLE ontos_ml.workbench.qa_pairs ADD COLUMNS (confidence DOUBLE);
UPDATE ontos_ml.workbench.qa_pairs SET confidence = length(answer) / 100.0;
