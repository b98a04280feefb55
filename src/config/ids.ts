/**
 * A tenant id, as every part of the configuration names one (sources, plans, a destination's tenants): one
 * rule, so a tenant a source sends to can always be named elsewhere.
 */
import { z } from 'zod';

export const tenantId = z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'a tenant id is 1-128 letters, digits, ".", "_" or "-"');
