-- Seed 001's Unity Catalog layout: catalog `ml` with its schemas, and the customer feature table the
-- models read (the seed's features: age, total_spend_30d).
CREATE CATALOG IF NOT EXISTS ml;
CREATE SCHEMA IF NOT EXISTS ml.raw;
CREATE SCHEMA IF NOT EXISTS ml.features;
CREATE SCHEMA IF NOT EXISTS ml.models;
CREATE SCHEMA IF NOT EXISTS ml.monitoring;
CREATE CATALOG IF NOT EXISTS ml_backups;
CREATE TABLE IF NOT EXISTS ml.features.customer_features (customer_id BIGINT NOT NULL, age INT, total_spend_30d DOUBLE, updated_at TIMESTAMP) USING DELTA;
