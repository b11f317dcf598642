/*
 * lib/imap: read a mailbox over IMAP (RFC 3501): the bounce mailbox, or a
 * recipient's Junk folder.  Folders with their special-use attributes
 * (RFC 6154), searches by header and by date, messages fetched byte for
 * byte with a size bound, and deletion for cleaning up.
 *
 * IMAP is libcurl's (Debian libcurl4-openssl-dev): maintained, TLS through
 * OpenSSL with the system's or a given CA file, the IMAP URL syntax of
 * RFC 5092, implicit TLS (imaps://) and STARTTLS, SASL login, and connection
 * reuse across requests.  docs/LIBRARIES.md ("libcurl") lists what Debian
 * 12's libcurl 7.88 does not do for us and how imap.c works around it: most
 * commands are custom requests whose replies small bounded readers take
 * apart; messages are fetched by URL with the folder opened read-only, so
 * \Seen stays as it was; replies are kept small (libcurl's limit on header
 * lines); there is no IDLE, so a caller that waits for a message polls.
 * Of the server:
 *
 *  - A message that arrived after the folder was opened is searched only
 *    once a command has reported it (EXISTS): with Dovecot 2.3 a search
 *    alone does not find it.  RFC 3501 6.1.2 names NOOP as the poll for
 *    new messages (md_imap_noop); STATUS is for the other folders only
 *    (6.3.10: Dovecot answers it for the selected one with [CLIENTBUG]).
 *
 * Every operation is bounded: a timeout per operation, an optional
 * deadline for the whole session, a maximum message size and a maximum
 * number of search results.  Failures are md_status + md_error: stage
 * "imap.connect", "imap.tls", "imap.login", "imap.select", "imap.timeout",
 * "imap.fetch" ..., with the server's last reply (sanitized) as the peer's
 * words.
 */
#ifndef MAILDIAG_IMAP_H
#define MAILDIAG_IMAP_H

#include <stddef.h>
#include <stdint.h>
#include "base/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MD_IMAP_TIMEOUT_DEFAULT_MS   30000u
#define MD_IMAP_MAX_MESSAGE_DEFAULT  (10u << 20)
#define MD_IMAP_MAX_RESULTS_DEFAULT  10000u

typedef struct md_imap_options {
    /* imaps://USER@HOST[:PORT][/FOLDER] (TLS from the start, port 993) or
     * imap://USER@HOST[:PORT][/FOLDER] (STARTTLS when the server offers
     * it, port 143).  FOLDER defaults to INBOX; %-escapes are decoded. */
    const char *url;
    const char *password;      /* required; copied, never logged */
    const char *ca_file;       /* PEM CA bundle; NULL = the system's */
    int insecure;              /* do not verify the server's certificate */
    unsigned timeout_ms;       /* connecting and each command; 0 = default */
    unsigned deadline_ms;      /* the whole session; 0 = none */
    size_t max_message;        /* largest message fetched; 0 = default */
    size_t max_results;        /* UIDs kept from a search; 0 = default */
} md_imap_options;

typedef struct md_imap md_imap;

/*
 * Connects, logs in and selects the folder of the URL.  Caller frees with
 * md_imap_free().  MD_CONFIG for a bad URL or a missing password;
 * MD_TEMPFAIL when the server cannot be reached or time ran out;
 * MD_PERMFAIL for a TLS failure (stage "imap.tls") or a refused login
 * (stage "imap.login"); MD_NOTFOUND when the folder does not exist.
 */
MD_API md_status md_imap_open(const md_imap_options *o, md_imap **out, md_error *err);
MD_API void md_imap_free(md_imap *m);

/* Whether the server's replies came over TLS (always for imaps://; for
 * imap:// only after STARTTLS).  When 0, the password went in clear. */
MD_API int md_imap_tls(const md_imap *m);
/* "TLSv1.3" ..., or "" without TLS.  Borrowed. */
MD_API const char *md_imap_tls_version(const md_imap *m);
/* The host, user and folder of the session.  Borrowed. */
MD_API const char *md_imap_host(const md_imap *m);
MD_API const char *md_imap_user(const md_imap *m);
MD_API const char *md_imap_folder(const md_imap *m);

/* Special-use attributes (RFC 6154) and \Noselect. */
#define MD_IMAP_JUNK     0x01u
#define MD_IMAP_TRASH    0x02u
#define MD_IMAP_SENT     0x04u
#define MD_IMAP_DRAFTS   0x08u
#define MD_IMAP_ARCHIVE  0x10u
#define MD_IMAP_ALL      0x20u
#define MD_IMAP_FLAGGED  0x40u
#define MD_IMAP_NOSELECT 0x80u

typedef struct md_imap_folder {
    char *name;       /* as the server names it (modified UTF-7), sanitized */
    unsigned flags;   /* MD_IMAP_* */
} md_imap_folder_info;

typedef struct md_imap_folder_list {
    md_imap_folder_info *v;
    size_t n;
} md_imap_folder_list;

/* Every folder (LIST "" "*", with RETURN (SPECIAL-USE) when the server
 * announces LIST-EXTENDED and SPECIAL-USE).  Caller clears *out. */
MD_API md_status md_imap_list(md_imap *m, md_imap_folder_list *out, md_error *err);
MD_API void md_imap_folder_list_clear(md_imap_folder_list *l);
/* The Junk folder: the one marked \Junk, else one named Junk or Spam (any
 * case, at any level); NULL when there is none.  Borrowed from l. */
MD_API const char *md_imap_junk_folder(const md_imap_folder_list *l);

/* Whether f is a Junk folder as md_imap_junk_folder sees it: marked
 * \Junk, or its last level named Junk or Spam (any case); never a
 * \Noselect one. */
MD_API int md_imap_folder_is_junk(const md_imap_folder_info *f);

/* Selects another folder for the calls below.  MD_NOTFOUND when missing. */
MD_API md_status md_imap_select(md_imap *m, const char *folder, md_error *err);

/* The selected folder's UIDVALIDITY and UIDNEXT as its last opening
 * (md_imap_open, md_imap_select, a fetch or delete that reopened it)
 * reported them; 0 when the server did not say. */
MD_API void md_imap_folder_uids(const md_imap *m, uint32_t *uidvalidity, uint32_t *uidnext);

/* Lets the server report what changed in the selected folder (NOOP): a
 * message that arrived since it was opened is found by the searches after
 * this, not necessarily before (see above). */
MD_API md_status md_imap_noop(md_imap *m, md_error *err);

typedef struct md_imap_folder_status {
    uint32_t messages, uidnext, uidvalidity;   /* 0 when not reported */
} md_imap_folder_status;

/* STATUS of another folder than the selected one (RFC 3501 6.3.10: never
 * the selected one; MD_CONFIG), without selecting it.  MD_NOTFOUND when
 * the server refuses it (no such folder), MD_PROTOCOL when the reply has
 * no UIDNEXT. */
MD_API md_status md_imap_status(md_imap *m, const char *folder, md_imap_folder_status *out, md_error *err);

typedef struct md_imap_uids {
    uint32_t *v;      /* ascending */
    size_t n;
    int truncated;    /* more matched than max_results: the lowest were kept */
} md_imap_uids;

/* UIDs of the messages whose header field contains value (IMAP SEARCH
 * HEADER: a substring, case-insensitive).  field and value are printable
 * ASCII; anything else is MD_CONFIG.  Caller clears *out. */
MD_API md_status md_imap_search_header(md_imap *m, const char *field, const char *value,
                                       md_imap_uids *out, md_error *err);
/* The same among the messages with a UID of min_uid or more (UID
 * min_uid:*; 0 or 1 = all).  "*" is the highest UID in the folder, so
 * when min_uid is above it the last message is searched as well. */
MD_API md_status md_imap_search_header_from(md_imap *m, uint32_t min_uid, const char *field, const char *value,
                                            md_imap_uids *out, md_error *err);
/* UIDs of the messages that arrived on or after the day (UTC) of since
 * (IMAP SINCE compares the internal date's day); since 0 = all. */
MD_API md_status md_imap_search_since(md_imap *m, int64_t since, md_imap_uids *out, md_error *err);
MD_API void md_imap_uids_clear(md_imap_uids *u);

typedef struct md_imap_info {
    uint32_t uid;
    int64_t internal_date;   /* when the server received it, Unix seconds; 0 unknown */
    size_t size;             /* RFC822.SIZE */
    int seen, deleted;
} md_imap_info;

/* INTERNALDATE, size and flags of one message.  MD_NOTFOUND when the UID
 * is not in the folder. */
MD_API md_status md_imap_fetch_info(md_imap *m, uint32_t uid, md_imap_info *out, md_error *err);

/*
 * The whole message, byte for byte as the server stores it, into *data
 * (NUL-terminated; caller frees) and *len, and its info into *info (may be
 * NULL).  Leaves \Seen as it was.  MD_NOTFOUND when the UID is gone,
 * MD_PERMFAIL (stage "imap.size") when it is larger than max_message.
 */
MD_API md_status md_imap_fetch(md_imap *m, uint32_t uid, char **data, size_t *len, md_imap_info *info,
                               md_error *err);

/* The info of many messages, a few commands in all: out[i] (caller's
 * array of uids->n) for uids->v[i]; uid 0 in it when that message is gone.
 * For reading a whole folder in one round trip per message. */
MD_API md_status md_imap_fetch_infos(md_imap *m, const md_imap_uids *uids, md_imap_info *out, md_error *err);
/* md_imap_fetch of a message whose info is known (from md_imap_fetch_infos):
 * MD_NOTFOUND when info->uid is 0. */
MD_API md_status md_imap_fetch_known(md_imap *m, const md_imap_info *info, char **data, size_t *len,
                                     md_error *err);

/* Deletes messages: STORE +FLAGS.SILENT (\Deleted), then UID EXPUNGE of
 * just those (UIDPLUS), or EXPUNGE when the server lacks UIDPLUS (which
 * also removes messages others marked \Deleted). */
MD_API md_status md_imap_delete(md_imap *m, const uint32_t *uids, size_t n, md_error *err);
/* Only the STORE of md_imap_delete: the messages stay until someone
 * expunges the folder. */
MD_API md_status md_imap_flag_deleted(md_imap *m, const uint32_t *uids, size_t n, md_error *err);
/* Whether the server announced UIDPLUS (RFC 4315): md_imap_delete then
 * expunges exactly the messages given. */
MD_API int md_imap_uidplus(const md_imap *m);

/* A new deadline for the whole session, ms from now (0 = none): every
 * later command gets at most what is left of it. */
MD_API void md_imap_set_deadline(md_imap *m, unsigned ms);

#ifdef __cplusplus
}
#endif
#endif
