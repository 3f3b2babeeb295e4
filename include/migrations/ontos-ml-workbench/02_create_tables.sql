-- The workbench's five tables (seed 000's Data Volumes table).
CREATE TABLE IF NOT EXISTS ontos_ml.workbench.templates (id BIGINT NOT NULL, name STRING NOT NULL, body STRING) USING DELTA;
CREATE TABLE IF NOT EXISTS ontos_ml.workbench.sheets (id BIGINT NOT NULL, name STRING NOT NULL, template_id BIGINT, created_at TIMESTAMP) USING DELTA;
CREATE TABLE IF NOT EXISTS ontos_ml.workbench.training_sheets (id BIGINT NOT NULL, sheet_id BIGINT NOT NULL, status STRING) USING DELTA;
CREATE TABLE IF NOT EXISTS ontos_ml.workbench.qa_pairs (id BIGINT NOT NULL, sheet_id BIGINT NOT NULL, question STRING, answer STRING) USING DELTA;
CREATE TABLE IF NOT EXISTS ontos_ml.workbench.canonical_labels (id BIGINT NOT NULL, label STRING NOT NULL) USING DELTA;
