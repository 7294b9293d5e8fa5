"""Security tests of the HTTP edge, runnable alone (`pytest tests/security`) and part of the whole suite.

Audit of the "signing oracle" class (issue 7): no route may answer a MAC, token or echo computed under a
secret that also authenticates deliveries over input the caller chose, and no error detail may carry an
expected signature or a secret. Checked, route by route:

- GET /v1/webhooks/linkedin: answered HMAC(client_secret, any printable string) while notifications are
  HMAC(client_secret, "hmacsha256=" + body): an oracle. Fixed: only a canonical UUID is answered.
- GET /v1/webhooks/meta: echoes `hub.challenge` only after `hub.verify_token` (its own secret) matched in
  constant time; the echo is not a MAC, and the delivery secret (`app_secret`) is never used there.
- POST /v1/webhooks/{typeform,tally,webflow,meta,linkedin,tiktok,generic}: every refusal detail is a fixed
  sentence; tested with every dev secret over every forgery (`assert_no_secret_in`).
- POST /v1/webhooks/google-ads: the key is compared, never echoed; schema errors come only after it matched.
- POST /v1/webhooks/hubspot-forms, POST /v1/forms/{id}: unauthenticated; they echo only an Origin the
  registry allows (ASCII scheme://host[:port] as sent) and a redirect re-serialised after checking; the
  CAPTCHA secret goes only to the provider.
- GET /v1/callbacks/{baidu,tencent}: a constant acknowledgement; Baidu's md5(URL + akey) is checked, never
  computed for the caller; Tencent's token is compared in constant time.
- leadflow/web.py problem details and ConfigurationError name secrets, never their values; the operator
  routes (IAM) hold no signing secret. No secret that verifies an inbound delivery signs anything outbound.
"""
