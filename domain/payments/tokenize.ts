import { invalidInput } from "../errors";

/**
 * Edge tokenization for the simulated provider: a raw card number is turned into an opaque token
 * here, in the request handler, and is never stored, logged or put on a queue. The token keeps
 * only the last four digits and the test scenario the number stands for (API.md's test cards).
 */
const TEST_CARDS: Record<string, SimulatedScenario> = {
  "4242424242424242": "success",
  "4000000000000002": "declined",
  "4000000000009995": "insufficient_funds",
  "4000000000000119": "transient",
  "4000000000006975": "hang",
  // Stripe's "refund fails" card: the charge succeeds, refunds do not (here: the first few attempts).
  "4000000000005126": "refund_outage",
};

export type SimulatedScenario = "success" | "declined" | "insufficient_funds" | "transient" | "hang" | "refund_outage";

const TOKEN_PATTERN = /^tok_sim_(success|declined|insufficient_funds|transient|hang|refund_outage)_(\d{4})$/;

/** Luhn checksum (ISO/IEC 7812), so typos are a 400 at the edge rather than a decline later. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** Card number → simulated-provider token; invalid input when it is not a plausible card number. */
export function tokenizeCard(cardNumber: string): string {
  const digits = cardNumber.replace(/[\s-]/g, "");
  if (!/^\d{12,19}$/.test(digits) || !luhnValid(digits)) {
    throw invalidInput("The card number is not valid", [
      { path: "payment.cardNumber", message: "not a valid card number" },
    ]);
  }
  return `tok_sim_${TEST_CARDS[digits] ?? "success"}_${digits.slice(-4)}`;
}

/** The scenario a simulated token stands for, or null when the token is not one of ours. */
export function simulatedScenario(token: string): SimulatedScenario | null {
  const match = TOKEN_PATTERN.exec(token);
  return match ? (match[1] as SimulatedScenario) : null;
}
