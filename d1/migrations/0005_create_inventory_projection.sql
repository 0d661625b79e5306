CREATE TABLE `inventory_projection` (
	`sku` text PRIMARY KEY NOT NULL,
	`revision` integer NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL
);
