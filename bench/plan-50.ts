/**
 * The tracking plans of bench:ingest's plan runs: 50 events in `block` mode for every violation type. Four
 * of them are the simulated traffic's track events, with strict schemas, so the traffic passes: that run
 * measures the checks. With `blockChats`, `chat started` is left out of the plan (49 events), so the chats
 * (about one event in twenty) are blocked as unplanned and take the quarantine path.
 */
const ENFORCEMENT = ['Unplanned-Event', 'Required-Missing', 'Datatype-Mismatch', 'Additional-Properties', 'Naming-Convention', 'Forbidden-Property', 'Invalid-Value'];

const TRAFFIC = `  - name: product viewed
    properties:
      type: object
      required: [product_id, merchant_id]
      additionalProperties: false
      properties:
        product_id: { type: string, pattern: '^p[0-9]+$' }
        merchant_id: { type: string }
        price: { type: number, minimum: 0 }
        impressions: { type: array, items: { type: string }, maxItems: 50 }
  - name: product shared
    properties:
      type: object
      required: [product_id]
      additionalProperties: false
      properties: { product_id: { type: string }, merchant_id: { type: string } }
@@CHAT@@  - name: order completed
    properties:
      type: object
      required: [order_id, revenue, products]
      properties:
        order_id: { type: string }
        revenue: { type: number, minimum: 0 }
        products:
          type: array
          items:
            type: object
            required: [product_id, price]
            properties: { product_id: { type: string }, merchant_id: { type: string }, price: { type: number }, quantity: { type: integer, minimum: 1 } }
`;

const OBJECTS = ['user', 'call', 'episode', 'invite', 'message', 'payment', 'profile', 'report', 'review', 'session', 'subscription'];
const ACTIONS = ['created', 'updated', 'deleted', 'opened', 'closed'];

const CHAT = `  - name: chat started
    properties:
      type: object
      required: [product_id]
      additionalProperties: false
      properties: { product_id: { type: string }, merchant_id: { type: string } }
`;

export function plan50(o: { blockChats?: boolean } = {}): string {
  const more: string[] = [];
  for (const o of OBJECTS) {
    for (const a of ACTIONS) {
      if (more.length === 46) break;
      more.push(`  - name: ${o} ${a}\n    properties:\n      type: object\n      required: [${o}_id]\n      properties: { ${o}_id: { type: string }, user_type: { enum: [patient, practitioner, hr_admin, admin] }${o === 'episode' ? '' : ', episode_id: { type: string }'} }\n`);
    }
  }
  return `version: 1\nconventions:\n  forbiddenProperties: { channel_id: episode_id }\n  userTypes: [patient, practitioner, hr_admin, admin]\n  requiredProperties:\n    - { property: episode_id, events: ["call *"] }\nevents:\n${TRAFFIC.replace('@@CHAT@@', o.blockChats ? '' : CHAT)}${more.join('')}identify:\n  traits: { type: object, properties: { plan: { type: string } } }\nenforcement:\n${ENFORCEMENT.map((t) => `  ${t}: block\n`).join('')}`;
}
