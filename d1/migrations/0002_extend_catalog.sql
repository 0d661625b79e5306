CREATE TABLE `catalog_meta` (
	`key` text PRIMARY KEY NOT NULL,
	`value` integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE `product_variants` ADD `position` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `products` ADD `available` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `products` ADD `fts_rowid` integer;--> statement-breakpoint
CREATE UNIQUE INDEX `products_fts_rowid_unique` ON `products` (`fts_rowid`);--> statement-breakpoint
CREATE INDEX `products_status_price_idx` ON `products` (`status`,`price_amount`,`id`);--> statement-breakpoint
CREATE INDEX `products_status_created_idx` ON `products` (`status`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `products_status_category_idx` ON `products` (`status`,`category_id`,`price_amount`);