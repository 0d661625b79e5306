import { drizzle } from "drizzle-orm/d1";
import { notifications } from "../../d1/schema/orders";

/** One outgoing email. `dedupeKey` makes a redelivered event send nothing new. */
export interface EmailMessage {
  dedupeKey: string;
  /** Empty for account emails, which belong to no order. */
  orderId: string;
  userId: string;
  to: string;
  kind: (typeof notifications.$inferInsert)["kind"];
  subject: string;
  text: string;
  eventId: string;
}

/** The email seam: the local provider records to D1; a real one (SES, Postmark …) would send. */
export interface EmailProvider {
  readonly name: string;
  /** Sends once per dedupeKey; returns false when it had already been sent. */
  send(message: EmailMessage): Promise<boolean>;
}

/**
 * The default provider: the "sent" mail is the `notifications` row itself (local mode has no
 * network). INSERT … ON CONFLICT DO NOTHING on the dedupe key makes concurrent duplicates safe.
 */
export class LocalEmailProvider implements EmailProvider {
  readonly name = "local";
  readonly #db: D1Database;

  constructor(db: D1Database) {
    this.#db = db;
  }

  async send(message: EmailMessage): Promise<boolean> {
    const inserted = await drizzle(this.#db)
      .insert(notifications)
      .values({
        id: crypto.randomUUID(),
        dedupeKey: message.dedupeKey,
        orderId: message.orderId,
        userId: message.userId,
        provider: this.name,
        recipient: message.to,
        kind: message.kind,
        subject: message.subject,
        body: message.text,
        eventId: message.eventId,
      })
      .onConflictDoNothing({ target: notifications.dedupeKey })
      .returning({ id: notifications.id });
    return inserted.length > 0;
  }
}

/** The configured email provider (only the local one exists so far). */
export function emailProviderFor(env: Pick<Env, "DB">): EmailProvider {
  return new LocalEmailProvider(env.DB);
}
