-- Seed 000's 99_validate_and_seed.sql and seed_templates.sql: the starting templates and labels.
INSERT INTO ontos_ml.workbench.templates VALUES (1, 'classification', 'Label each row'), (2, 'extraction', 'Extract the fields');
INSERT INTO ontos_ml.workbench.canonical_labels VALUES (1, 'positive'), (2, 'negative'), (3, 'neutral');
