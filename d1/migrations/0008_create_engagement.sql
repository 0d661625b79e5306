CREATE TABLE `alerts` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`kind` text NOT NULL,
	`subject` text NOT NULL,
	`state` text NOT NULL,
	`value` real,
	`threshold` real,
	`message` text NOT NULL,
	`at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `alerts_subject_idx` ON `alerts` (`kind`,`subject`,`seq`);--> statement-breakpoint
CREATE TABLE `analytics_daily` (
	`day` text NOT NULL,
	`currency` text NOT NULL,
	`carts_created` integer DEFAULT 0 NOT NULL,
	`checkouts_started` integer DEFAULT 0 NOT NULL,
	`orders_placed` integer DEFAULT 0 NOT NULL,
	`orders_paid` integer DEFAULT 0 NOT NULL,
	`payment_failures` integer DEFAULT 0 NOT NULL,
	`orders_failed` integer DEFAULT 0 NOT NULL,
	`gross_revenue` integer DEFAULT 0 NOT NULL,
	`refunded` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`day`, `currency`)
);
--> statement-breakpoint
CREATE TABLE `analytics_events` (
	`event_id` text PRIMARY KEY NOT NULL,
	`type` text NOT NULL,
	`claimed_by` text NOT NULL,
	`occurred_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `analytics_hourly` (
	`hour` text NOT NULL,
	`currency` text NOT NULL,
	`carts_created` integer DEFAULT 0 NOT NULL,
	`checkouts_started` integer DEFAULT 0 NOT NULL,
	`orders_placed` integer DEFAULT 0 NOT NULL,
	`orders_paid` integer DEFAULT 0 NOT NULL,
	`payment_failures` integer DEFAULT 0 NOT NULL,
	`orders_failed` integer DEFAULT 0 NOT NULL,
	`gross_revenue` integer DEFAULT 0 NOT NULL,
	`refunded` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`hour`, `currency`)
);
--> statement-breakpoint
CREATE TABLE `analytics_product_daily` (
	`day` text NOT NULL,
	`sku` text NOT NULL,
	`currency` text NOT NULL,
	`name` text NOT NULL,
	`units` integer DEFAULT 0 NOT NULL,
	`revenue` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`day`, `sku`, `currency`)
);
--> statement-breakpoint
CREATE TABLE `saga_retries` (
	`id` text PRIMARY KEY NOT NULL,
	`order_id` text NOT NULL,
	`event_id` text,
	`event_type` text,
	`actor` text NOT NULL,
	`at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `saga_retries_order_idx` ON `saga_retries` (`order_id`);--> statement-breakpoint
CREATE TABLE `product_media` (
	`product_id` text NOT NULL,
	`key` text NOT NULL,
	`content_type` text NOT NULL,
	`size` integer NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL,
	PRIMARY KEY(`product_id`, `key`)
);
--> statement-breakpoint
CREATE INDEX `product_media_key_idx` ON `product_media` (`key`);--> statement-breakpoint
CREATE TABLE `product_pairs` (
	`product_id` text NOT NULL,
	`other_id` text NOT NULL,
	`orders` integer NOT NULL,
	PRIMARY KEY(`product_id`, `other_id`)
);
--> statement-breakpoint
CREATE INDEX `product_pairs_rank_idx` ON `product_pairs` (`product_id`,`orders`,`other_id`);--> statement-breakpoint
CREATE TABLE `product_ratings` (
	`product_id` text PRIMARY KEY NOT NULL,
	`rating_sum` integer DEFAULT 0 NOT NULL,
	`rating_count` integer DEFAULT 0 NOT NULL,
	CONSTRAINT "product_ratings_non_negative" CHECK("product_ratings"."rating_sum" >= 0 AND "product_ratings"."rating_count" >= 0)
);
--> statement-breakpoint
CREATE TABLE `product_sales` (
	`product_id` text PRIMARY KEY NOT NULL,
	`units` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `product_sales_units_idx` ON `product_sales` (`units`);--> statement-breakpoint
CREATE TABLE `recommendation_orders` (
	`order_id` text PRIMARY KEY NOT NULL,
	`counted_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL
);
--> statement-breakpoint
CREATE TABLE `reviews` (
	`id` text PRIMARY KEY NOT NULL,
	`product_id` text NOT NULL,
	`user_id` text,
	`author_name` text,
	`rating` integer NOT NULL,
	`title` text NOT NULL,
	`body` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL,
	CONSTRAINT "reviews_rating_range" CHECK("reviews"."rating" BETWEEN 1 AND 5)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `reviews_product_user_unique` ON `reviews` (`product_id`,`user_id`);--> statement-breakpoint
CREATE INDEX `reviews_product_created_idx` ON `reviews` (`product_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `reviews_user_idx` ON `reviews` (`user_id`);