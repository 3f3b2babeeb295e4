-- Seed 000's schemas/01_create_catalog.sql: the production catalog, its schema and the backup catalog.
CREATE CATALOG IF NOT EXISTS ontos_ml;
CREATE SCHEMA IF NOT EXISTS ontos_ml.workbench;
CREATE CATALOG IF NOT EXISTS ontos_ml_backups;
CREATE SCHEMA IF NOT EXISTS ontos_ml_backups.workbench;
