CREATE TABLE `dead_letters` (
	`id` text PRIMARY KEY NOT NULL,
	`event_id` text,
	`type` text,
	`order_id` text,
	`body` text NOT NULL,
	`attempts` integer NOT NULL,
	`problem` text NOT NULL,
	`received_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `dead_letters_order_idx` ON `dead_letters` (`order_id`);--> statement-breakpoint
CREATE TABLE `idempotency_keys` (
	`scope` text NOT NULL,
	`key` text NOT NULL,
	`request_hash` text NOT NULL,
	`state` text NOT NULL,
	`response_status` integer,
	`response_body` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL,
	PRIMARY KEY(`scope`, `key`)
);
--> statement-breakpoint
CREATE TABLE `notifications` (
	`id` text PRIMARY KEY NOT NULL,
	`dedupe_key` text NOT NULL,
	`order_id` text NOT NULL,
	`user_id` text NOT NULL,
	`channel` text DEFAULT 'email' NOT NULL,
	`provider` text NOT NULL,
	`recipient` text NOT NULL,
	`kind` text NOT NULL,
	`subject` text NOT NULL,
	`body` text NOT NULL,
	`event_id` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `notifications_dedupe_idx` ON `notifications` (`dedupe_key`);--> statement-breakpoint
CREATE INDEX `notifications_order_idx` ON `notifications` (`order_id`);--> statement-breakpoint
CREATE TABLE `orders_view` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`status` text NOT NULL,
	`reason` text,
	`total_amount` integer NOT NULL,
	`currency` text NOT NULL,
	`item_count` integer NOT NULL,
	`items` text NOT NULL,
	`payment_status` text NOT NULL,
	`refunded_amount` integer DEFAULT 0 NOT NULL,
	`revision` integer NOT NULL,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `orders_view_user_created_idx` ON `orders_view` (`user_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `payment_ledger` (
	`id` text PRIMARY KEY NOT NULL,
	`order_id` text NOT NULL,
	`provider` text NOT NULL,
	`kind` text NOT NULL,
	`amount` integer NOT NULL,
	`currency` text NOT NULL,
	`provider_ref` text,
	`detail` text,
	`idempotency_key` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `payment_ledger_idem_idx` ON `payment_ledger` (`idempotency_key`);--> statement-breakpoint
CREATE INDEX `payment_ledger_order_idx` ON `payment_ledger` (`order_id`);--> statement-breakpoint
CREATE TABLE `simulated_payments` (
	`idempotency_key` text PRIMARY KEY NOT NULL,
	`operation` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`result` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL
);
