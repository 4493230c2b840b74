import { z } from 'zod';
import { GUEST_ROLES, WORKSPACE_ROLES } from '../../domain.ts';

/** Emails are compared case-insensitively: stored lower-cased. */
export const emailSchema = z
  .string()
  .trim()
  .max(254)
  .pipe(z.email({ message: 'must be an email address' }))
  .transform((e) => e.toLowerCase());

export const inviteBody = z.strictObject({ email: emailSchema, role: z.enum(WORKSPACE_ROLES) });
export const guestInviteBody = z.strictObject({ email: emailSchema, role: z.enum(GUEST_ROLES) });

