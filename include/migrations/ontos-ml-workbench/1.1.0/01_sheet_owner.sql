-- 1.1.0: sheets get an owner; existing sheets belong to the workbench service principal.
ALTER TABLE ontos_ml.workbench.sheets ADD COLUMNS (owner STRING);
UPDATE ontos_ml.workbench.sheets SET owner = 'ontos-app-sp';
