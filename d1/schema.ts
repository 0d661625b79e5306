// drizzle schema: one section per area (identity, catalog, orders read model, ...).
export {};
