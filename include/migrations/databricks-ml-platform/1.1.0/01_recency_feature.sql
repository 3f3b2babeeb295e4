-- 1.1.0: the recency feature the new model reads; existing customers start at 0.
ALTER TABLE ml.features.customer_features ADD COLUMNS (days_since_last_order INT);
UPDATE ml.features.customer_features SET days_since_last_order = 0;
