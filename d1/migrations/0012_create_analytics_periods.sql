CREATE TABLE `analytics_product_periods` (
	`currency` text NOT NULL,
	`span` text NOT NULL,
	`start` text NOT NULL,
	`sku` text NOT NULL,
	`units` integer DEFAULT 0 NOT NULL,
	`revenue` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`currency`, `span`, `start`, `sku`)
);
--> statement-breakpoint
-- Backfill from the day rows already counted, so windows over earlier days read the same totals.
INSERT INTO `analytics_product_periods` (`currency`, `span`, `start`, `sku`, `units`, `revenue`)
SELECT `currency`, 'week', substr(`day`, 1, 8) || printf('%02d', min(4, (CAST(substr(`day`, 9, 2) AS INTEGER) - 1) / 7) * 7 + 1),
       `sku`, sum(`units`), sum(`revenue`)
  FROM `analytics_product_daily` GROUP BY 1, 3, 4;
--> statement-breakpoint
INSERT INTO `analytics_product_periods` (`currency`, `span`, `start`, `sku`, `units`, `revenue`)
SELECT `currency`, 'month', substr(`day`, 1, 8) || '01', `sku`, sum(`units`), sum(`revenue`)
  FROM `analytics_product_daily` GROUP BY 1, 3, 4;
