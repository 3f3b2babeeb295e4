-- Seed 004's database (the upstream project's config/init.sql): raw and processed loan data, model
-- metadata with the active model, logged predictions and model performance over time.
CREATE SCHEMA IF NOT EXISTS loan_data;
CREATE TABLE loan_data.raw_data (
    id bigserial PRIMARY KEY,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE loan_data.processed_data (
    id bigserial PRIMARY KEY,
    raw_id bigint REFERENCES loan_data.raw_data (id),
    features jsonb NOT NULL,
    label smallint,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE loan_data.model_metadata (
    model_version text PRIMARY KEY,
    model_path text NOT NULL,
    f1_score double precision NOT NULL,
    is_active boolean NOT NULL DEFAULT false,
    trained_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE loan_data.predictions (
    id bigserial PRIMARY KEY,
    model_version text NOT NULL,
    probability double precision NOT NULL,
    prediction smallint NOT NULL,
    predicted_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE loan_data.model_performance (
    id bigserial PRIMARY KEY,
    model_version text NOT NULL,
    f1_score double precision NOT NULL,
    evaluation_date date NOT NULL DEFAULT current_date
);
CREATE INDEX idx_raw_data_date ON loan_data.raw_data (created_at);
CREATE INDEX idx_predictions_model ON loan_data.predictions (model_version);
CREATE INDEX idx_predictions_date ON loan_data.predictions (predicted_at);
CREATE INDEX idx_performance_date ON loan_data.model_performance (evaluation_date);
CREATE INDEX idx_model_active ON loan_data.model_metadata (is_active);
