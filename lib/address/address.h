/*
 * lib/address: email addresses given by people.
 *
 *  - parsing and validation per RFC 5321 section 4.1.2 (Mailbox: dot-string
 *    or quoted-string local part, domain or address literal) with the
 *    length limits of 4.5.3.1 (local part 64 octets, path 256 octets, so
 *    the address itself at most 254), UTF-8 local parts per RFC 6531/6532;
 *  - IDN domains to A-labels with libidn2 (md_dns_name_normalize) and back
 *    to U-labels for display;
 *  - the lookup key: domain lower case, local part compared
 *    case-insensitively unless asked otherwise, quoting removed where it is
 *    not needed ("john"@x and john@x are the same mailbox, RFC 5321 4.1.2);
 *  - provider rules (dots and +tags at gmail.com / googlemail.com) as a
 *    separate "also matches" key, never merged into the lookup key;
 *  - typo suggestions for mistyped domains of common providers or of domains
 *    many accounts use.
 *
 * Everything here is pure: no DNS, no store.  Callers bring the facts
 * (accounts per domain, whether the domain has working MX).
 */
#ifndef MAILDIAG_ADDRESS_H
#define MAILDIAG_ADDRESS_H

#include <stddef.h>
#include "base/base.h"
#include "dns/name.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MD_ADDRESS_LOCAL_MAX 64     /* RFC 5321 4.5.3.1.1, octets */
#define MD_ADDRESS_MAX 254          /* path limit 256 minus "<" ">" */
#define MD_ADDRESS_DISPLAY_MAX 1024 /* local@U-label form */

typedef struct md_address {
    char local[MD_ADDRESS_LOCAL_MAX + 1];  /* as written: quotes and escapes kept */
    char domain[MD_DNS_NAME_MAX + 1];      /* A-labels, lower case; or "[literal]" */
    char domain_unicode[MD_ADDRESS_DISPLAY_MAX]; /* U-label form when it differs, else "" */
    char ascii[MD_ADDRESS_MAX + 1];        /* local@domain (A-labels) */
    char display[MD_ADDRESS_DISPLAY_MAX];  /* local@domain as people read it (U-labels) */
    int quoted;                            /* the local part is a quoted-string */
    int literal;                           /* the domain is an address literal */
} md_address;

/*
 * Parses an address typed by a person.  Surrounding blanks and one pair of
 * angle brackets are accepted; a display name or comment is not.  Fills
 * *out.  Returns MD_OK, or MD_CONFIG with err->text saying what is wrong in
 * plain words (stage "input.address").
 */
md_status md_address_parse(const char *input, md_address *out, md_error *err);

/* Flags for md_address_key. */
#define MD_ADDRESS_CASE_SENSITIVE 0x1u   /* keep the local part's case */

/*
 * The lookup key of a parsed address: "local@domain" with the domain in
 * A-labels, lower case; the local part unquoted when its content is a valid
 * dot-string (else re-quoted with the fewest escapes), and its ASCII
 * letters lower-cased unless MD_ADDRESS_CASE_SENSITIVE.  key needs at least
 * MD_ADDRESS_MAX + 1 bytes.  Returns MD_OK, or MD_CONFIG when key is small.
 */
md_status md_address_key(const md_address *a, unsigned flags, char *key, size_t size);

/*
 * The provider key: for mailbox providers that ignore dots and +tags in the
 * local part (gmail.com, googlemail.com), the form every spelling of the
 * same mailbox shares ("johnsmith@gmail.com").  Returns 1 and fills key when
 * a provider rule applies, 0 (key "") when none does.  Only ever a hint:
 * "also matches", never the lookup key.
 */
int md_address_provider_key(const md_address *a, char *key, size_t size);

/* Optimal-string-alignment edit distance (insert, delete, substitute,
 * swap two neighbours) between a and b, ASCII bytes; stops counting above
 * max and then returns max + 1. */
unsigned md_address_distance(const char *a, const char *b, unsigned max);

/* Whether domain (A-label, lower case) is one of the common mailbox
 * providers in the built-in list. */
int md_address_is_common_provider(const char *domain);

typedef struct md_domain_count {
    const char *domain;      /* A-label, lower case; borrowed */
    unsigned long accounts;
} md_domain_count;

typedef enum md_address_mx {
    MD_ADDRESS_MX_UNKNOWN = 0,  /* not checked, or a temporary DNS failure */
    MD_ADDRESS_MX_WORKS,        /* mail for the domain has a route */
    MD_ADDRESS_MX_NONE          /* no route: NXDOMAIN, null MX, no MX and no address */
} md_address_mx;

#define MD_ADDRESS_MANY_DEFAULT 20   /* "many accounts" */

typedef struct md_address_typo_facts {
    const md_domain_count *popular; /* domains of the store with many accounts */
    size_t npopular;
    unsigned long accounts;         /* accounts at the domain being checked */
    md_address_mx mx;               /* what DNS says about the domain */
    unsigned long many;             /* "many accounts"; 0 = MD_ADDRESS_MANY_DEFAULT */
} md_address_typo_facts;

/*
 * Whether domain (A-label, lower case) looks like a typo of a common
 * provider or of a popular domain of the store, by edit distance: one edit
 * for names under 12 characters, two from 12 on; for short candidates
 * (under 8 characters, like aol.com) only the top-level domain may differ.
 * Never for a common provider itself, nor for a domain with many accounts
 * unless DNS says it has no mail route.  Returns 1 and fills suggestion
 * (and *distance if not NULL) with the closest candidate, the more common
 * one on a tie; else 0 and suggestion "".
 */
int md_address_suggest(const char *domain, const md_address_typo_facts *facts,
                       char *suggestion, size_t size, unsigned *distance);

#ifdef __cplusplus
}
#endif
#endif
