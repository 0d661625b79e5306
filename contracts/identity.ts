import { z } from "./zod.ts";

// Strict objects everywhere: an unknown field is a client bug (or a probe) and gets a 400 rather
// than being silently dropped.

// Lone surrogates survive JSON.parse but not UTF-8 encoding (they become U+FFFD), so two
// different inputs would store or hash identically: refuse them.
const wellFormed = (s: string) => s.isWellFormed();
// C0/C1 controls and bidi overrides (used to spoof how a name renders) have no place in a name.
const SPOOFING_CHARS = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/u;

export const Email = z
  .string()
  .trim()
  .normalize("NFC")
  .toLowerCase()
  .max(254)
  .email()
  .openapi({ example: "shopper@edgepulse.test", description: "Case-insensitive; stored normalized" });

export const Password = z
  .string()
  .min(8)
  .max(256)
  .refine(wellFormed, "Must be well-formed Unicode")
  .openapi({ format: "password", example: "correct horse battery staple" });

export const Name = z
  .string()
  .trim()
  .normalize("NFC")
  .min(1)
  .max(100)
  .refine(wellFormed, "Must be well-formed Unicode")
  .refine((s) => !SPOOFING_CHARS.test(s), "Must not contain control or bidi-override characters")
  .openapi({ example: "Ada Lovelace" });

const PreferenceValue = z.union([z.string().max(256).refine(wellFormed), z.number(), z.boolean(), z.null()]);
export const Preferences = z
  .record(z.string().min(1).max(64).refine(wellFormed), PreferenceValue)
  .refine((p) => Object.keys(p).length <= 50, "At most 50 preferences")
  .openapi("Preferences", { example: { currency: "USD", newsletter: false } });

export const TotpCode = z
  .string()
  .regex(/^\d{6}$/, "A 6-digit code")
  .openapi({ example: "123456" });

/** One of the ten single-use MFA recovery codes; case and dashes are ignored. */
export const RecoveryCode = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z2-7]{4}(-?[a-z2-7]{4}){3}$/, "A recovery code like k3vq-7hxa-m2pd-wr5t")
  .openapi({ example: "k3vq-7hxa-m2pd-wr5t" });

/** The password typed to prove it is the holder: no length floor, it only has to match. */
const CurrentPassword = z
  .string()
  .min(1)
  .max(256)
  .refine(wellFormed, "Must be well-formed Unicode")
  .openapi({ format: "password" });

export const RegisterBody = z.strictObject({ email: Email, password: Password, name: Name }).openapi("RegisterBody");
export const LoginBody = z
  .strictObject({
    email: Email,
    // No length floor here: a short password simply fails to match; revealing the policy on
    // login gains nothing. The ceiling bounds PBKDF2 input.
    password: z.string().min(1).max(256).refine(wellFormed, "Must be well-formed Unicode"),
    totp: TotpCode.optional(),
    recoveryCode: RecoveryCode.optional().openapi({ description: "Instead of `totp`: an unused MFA recovery code" }),
  })
  .openapi("LoginBody");
export const RefreshBody = z.strictObject({ refreshToken: z.string().min(1).max(512) }).openapi("RefreshBody");
export const ServiceTokenBody = z
  .strictObject({
    secret: z.string().min(1).max(512),
    collectorId: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/)
      .optional()
      .openapi({ description: "The collector host's identity (COLLECTOR_ID): one publish socket per identity" }),
  })
  .openapi("ServiceTokenBody");
export const VerifyEmailBody = z
  .strictObject({ token: z.string().min(1).max(512).openapi({ description: "The token mailed at registration" }) })
  .openapi("VerifyEmailBody");
export const UpdateMeBody = z
  .strictObject({ name: Name.optional(), preferences: Preferences.optional() })
  .openapi("UpdateMeBody");
export const MfaVerifyBody = z.strictObject({ code: TotpCode }).openapi("MfaVerifyBody");

export const User = z
  .object({
    id: z.string(),
    email: z.string(),
    name: z.string(),
    roles: z.array(z.enum(["customer", "admin", "service"])),
    createdAt: z.string(),
    updatedAt: z.string(),
    preferences: Preferences,
    mfaEnabled: z.boolean(),
  })
  .openapi("User");

export const TokenPair = z
  .object({
    accessToken: z.string(),
    refreshToken: z.string(),
    tokenType: z.literal("Bearer"),
    expiresIn: z.number().int().openapi({ description: "Access-token lifetime in seconds" }),
  })
  .openapi("TokenPair");

export const ServiceToken = z
  .object({ accessToken: z.string(), tokenType: z.literal("Bearer"), expiresIn: z.number().int() })
  .openapi("ServiceToken");

export const MfaEnrolment = z.object({ secret: z.string(), otpauthUrl: z.string() }).openapi("MfaEnrolment");
export const MfaStatus = z.object({ mfaEnabled: z.boolean() }).openapi("MfaStatus");

/**
 * Proof of being the account holder for a sensitive action, beyond the bearer token: the current
 * password, plus a current TOTP code when MFA is on.
 */
export const ReauthBody = z
  .strictObject({ password: CurrentPassword, totp: TotpCode.optional() })
  .openapi("ReauthBody");
/** `ReauthBody`, where an unused recovery code may stand in for the TOTP code (lost authenticator). */
export const ReauthOrRecoveryBody = z
  .strictObject({
    password: CurrentPassword,
    totp: TotpCode.optional(),
    recoveryCode: RecoveryCode.optional().openapi({ description: "Instead of `totp`: an unused MFA recovery code" }),
  })
  .openapi("ReauthOrRecoveryBody");
export const ChangePasswordBody = z
  .strictObject({
    currentPassword: CurrentPassword,
    newPassword: Password,
    totp: TotpCode.optional(),
    recoveryCode: RecoveryCode.optional().openapi({ description: "Instead of `totp`: an unused MFA recovery code" }),
  })
  .openapi("ChangePasswordBody");
export const PasswordResetRequestBody = z.strictObject({ email: Email }).openapi("PasswordResetRequestBody");
export const PasswordResetConfirmBody = z
  .strictObject({
    token: z.string().min(1).max(512).openapi({ description: "The token from the reset email" }),
    newPassword: Password,
  })
  .openapi("PasswordResetConfirmBody");
export const RecoveryCodes = z
  .object({
    recoveryCodes: z.array(z.string()).openapi({ description: "Ten single-use codes, shown only this once" }),
  })
  .openapi("RecoveryCodes");
export const MfaActivated = z
  .object({ mfaEnabled: z.boolean(), recoveryCodes: RecoveryCodes.shape.recoveryCodes })
  .openapi("MfaActivated");
/** Roles an admin can give an account (`service` belongs to the collector host, not to accounts). */
export const SetRolesBody = z
  .strictObject({
    roles: z
      .array(z.enum(["customer", "admin"]))
      .min(1)
      .max(2)
      .refine((roles) => new Set(roles).size === roles.length, "Each role once"),
  })
  .openapi("SetRolesBody");
