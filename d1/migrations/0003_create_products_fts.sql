-- Full-text index over products: name, description and attribute values.
-- porter stemming so "laptops" finds "laptop"; prefix indexes so autocomplete prefixes
-- ("lap"*) are answered from the index instead of a scan of the term list.
-- rowid = products.fts_rowid; the catalog writes both in one D1 batch (workers/catalog/store.ts).
CREATE VIRTUAL TABLE `products_fts` USING fts5(
	`name`,
	`description`,
	`attributes`,
	tokenize = 'porter unicode61 remove_diacritics 2',
	prefix = '2 3 4'
);
--> statement-breakpoint
-- Backfill rows that existed before the index did.
UPDATE `products` SET `fts_rowid` = (
	SELECT `n` FROM (SELECT `id` AS `pid`, row_number() OVER (ORDER BY `created_at`, `id`) AS `n` FROM `products`) WHERE `pid` = `products`.`id`
) WHERE `fts_rowid` IS NULL;
--> statement-breakpoint
INSERT INTO `products_fts` (`rowid`, `name`, `description`, `attributes`)
SELECT `fts_rowid`, `name`, `description`, coalesce((SELECT group_concat(`value`, ' ') FROM json_each(`products`.`attributes`)), '')
FROM `products`;
--> statement-breakpoint
INSERT OR IGNORE INTO `catalog_meta` (`key`, `value`) VALUES ('version', 1);
