/* config.h - the bootstrap INI file: where to listen, where data lives,
 * logging, limits. Everything else is in the database. */
#ifndef SB_CONFIG_H
#define SB_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef struct sb_config {
    char listen_host[64];
    int listen_port;
    char data_dir[512];
    char log_file[512];
    char log_level[16];
    char public_url[256];       /* how browsers reach us; for widget snippets */
    char web_root[512];         /* [server] web_root: the built workspace (web/dist) */
    size_t max_body_bytes;      /* [http] max_body */
    unsigned max_connections;   /* [http] max_connections */
    unsigned header_timeout_ms; /* [http] header_timeout_ms */
    unsigned idle_timeout_ms;   /* [http] idle_timeout_ms */
    unsigned rate_per_ip;       /* [limits] requests per second per IP (burst = 2x) */
    char trusted_proxies[256];  /* [http] comma-separated peer IPs whose X-Forwarded-For is believed */
    unsigned rate_per_token;    /* [limits] requests per second per token */
    unsigned max_pending_ops;   /* [limits] store ops queued before 503 */
    int64_t reopen_window_ms;   /* [tickets] reopen_window_days */
    unsigned session_ttl_hours; /* [auth] */
    unsigned outbox_max_attempts;
    unsigned outbox_timeout_ms;
    int demo; /* [demo] seed = true */
    /* [sip]: voice is off unless `listen` is set (or serve --sip) */
    char sip_host[64];
    int sip_port;                        /* 0 with sip_host set: any free port */
    char sip_realm[64];                  /* digest realm; HA1s are bound to it */
    unsigned sip_no_media_seconds;       /* an answered call without RTP this long is ended */
    char sip_prompts[512];               /* directory of <lang>/<name>.wav */
    unsigned sip_answer_delay_ms;        /* ring this long before the IVR answers */
    unsigned sip_ring_timeout_seconds;   /* an agent's phone rings this long per attempt */
    unsigned sip_queue_max_wait_seconds; /* a caller waits this long for an agent, then is missed */
    /* recordings: DATA/recordings/YYYY-MM/ */
    int sip_record_calls;                   /* answered calls are recorded (stereo WAV) */
    unsigned sip_voicemail_max_seconds;     /* a voicemail message is cut at this length */
    unsigned sip_voicemail_silence_seconds; /* ...or after this much silence */
    /* retention (src/voice/retention.c): files older than this many days
     * are deleted, the call rows say so; 0 = kept forever */
    unsigned sip_recordings_keep_days;
    unsigned sip_voicemail_keep_days;
    unsigned sip_register_max_failures;
    unsigned sip_register_lockout_seconds;
    int sip_auth_invites; /* INVITEs from extensions must pass their digest (else: registered from that IP) */
    unsigned sip_invite_rate_per_second; /* new INVITEs per source IP (0: no limit) */
    unsigned sip_invite_burst;           /* at once, above the rate */
    unsigned sip_overload_lag_ms;        /* the core this far behind the voice thread: new INVITEs get 503 */
    int sip_blacklist_prompt; /* [sip] blacklist = busy (486, default) | prompt (answer, "blocked", hang up) */
    /* [trunk]: the SIP provider outbound calls go through; no host: none */
    char trunk_host[128];                /* "host:port" (a host name is resolved by DNS) */
    char trunk_username[64];             /* digest credentials for our INVITEs */
    char trunk_password[128];            /* never logged */
    char trunk_from_number[32];          /* the caller ID when the customer never called a DID of ours */
    int trunk_tcp;                       /* transport = tcp (default udp) */
    char trunk_prefix[16];               /* prefix_numbers: before the E.164 digits (no "+") dialled */
    unsigned trunk_ring_timeout_seconds; /* the customer's phone rings this long */
    /* who may call our numbers (an INVITE not from a registered phone) */
    char trunk_allow[512];           /* allow: addresses/CIDRs the provider's INVITEs come from ("" = any) */
    char trunk_in_username[64];      /* inbound_username: the digest the provider's INVITEs must pass ("" = none) */
    char trunk_in_password[128];     /* never logged */
    int trunk_register;              /* register = true: we REGISTER at the host (username/password) */
    unsigned trunk_register_expires; /* seconds asked for; refreshed before they run out */
    int trunk_forward_number;        /* forward_caller_id = number: forwarded calls show our number, not the caller's */
} sb_config;

void sb_config_defaults(sb_config *c);
/* Loads `path` over the current values. Returns 0, or the failing line (>0),
 * or -1 if the file cannot be opened; *err names the problem. */
int sb_config_load(sb_config *c, const char *path, char *err, size_t errcap);
/* "HOST:PORT", "[::1]:PORT" or "PORT" */
int sb_config_parse_listen(sb_config *c, const char *z);
/* The same for [sip] listen / --sip. */
int sb_config_parse_sip_listen(sb_config *c, const char *z);

#endif
