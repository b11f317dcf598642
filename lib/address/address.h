/*
 * lib/address: email addresses, by one grammar for every module and tool.
 *
 * md_address_parse_len decides what an address is; everything else here
 * (md_address_parse, md_address_check, lib/message, the tools) calls it.
 * The module needs no DNS: the domain's labels and IDNA come from lib/base
 * (base/domain.h).
 *
 * THE GRAMMAR: RFC 5321 4.1.2 Mailbox, exactly, with RFC 6531 for UTF-8.
 *
 *   Mailbox        = Local-part "@" ( Domain / address-literal )
 *   Local-part     = Dot-string / Quoted-string
 *   Dot-string     = Atom *("." Atom)        ; no leading, trailing or double dot
 *   Atom           = 1*atext                 ; ALPHA DIGIT ! # $ % & ' * + - / = ? ^ _ ` { | } ~
 *                                            ; (RFC 5322 3.2.3) and UTF8-non-ascii (RFC 6531 3.3)
 *   Quoted-string  = DQUOTE *QcontentSMTP DQUOTE
 *   qtextSMTP      = %d32-33 / %d35-91 / %d93-126 / UTF8-non-ascii
 *   quoted-pairSMTP = %d92 %d32-126          ; a backslash escapes printable ASCII or
 *                                            ; a space, never a control or non-ASCII
 *                                            ; character (RFC 6531 does not extend it)
 *   Domain         = sub-domain *("." sub-domain)
 *   sub-domain     = Let-dig [Ldh-str] / U-label       (base/domain.h: at most 63
 *                    octets, no empty label, no trailing dot; a U-label is valid
 *                    IDNA2008 and is kept as its A-label)
 *   address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
 *                          General-address-literal ) "]"         (RFC 5321 4.1.3)
 *
 * Decisions, each with its reason:
 *  - ""@example.com (an empty quoted string) is accepted, flagged
 *    MD_ADDRESS_QUOTED: Quoted-string is *QcontentSMTP, zero or more, and
 *    RFC 5321 sets no minimum length for a local part (4.5.3.1.1 sets only
 *    the maximum).  Its lookup key stays ""@example.com.
 *  - IPv4-address-literal is Snum 3("." Snum), Snum 1 to 3 digits of value 0
 *    to 255; leading zeros are in the ABNF, so [192.000.002.001] is valid.
 *  - IPv6-address-literal is "IPv6:" (any case: ABNF strings are
 *    case-insensitive, RFC 5234 2.3) and one of IPv6-full (8 groups of 1 to
 *    4 hex digits), IPv6-comp ("::" stands for at least two groups, so at
 *    most 6 groups are written beside it: [IPv6:1:2:3:4:5:6:7::] is
 *    refused although RFC 4291 would accept it), IPv6v4-full (6 groups and
 *    an IPv4 address) and IPv6v4-comp (at most 4 groups beside "::", then an
 *    IPv4 address).  Stored as "[IPv6:" + the address in lower case + "]".
 *  - General-address-literal (Standardized-tag ":" 1*dcontent) is parsed,
 *    but 4.1.3 says the tag MUST be registered with IANA, and the Address
 *    Literal Tags registry holds only "IPv6": a literal with another tag is
 *    refused, and the message names the tag.  An untagged IPv6 address
 *    ([2001:db8::1]) is refused with a hint to add "IPv6:".
 *  - Lengths (4.5.3.1), in octets of UTF-8: the local part at most 64 as
 *    written (quotes and backslashes count); the path at most 256 with its
 *    angle brackets, so the address at most 254.  An address with an IDN
 *    domain must fit in both forms: with U-labels (what an SMTPUTF8 server
 *    receives, RFC 6531) and with A-labels (what every other server and the
 *    DNS receive, and what the lookup key holds).
 *  - Refused because they are RFC 5322 message-header syntax, not part of an
 *    RFC 5321 Mailbox: comments "(...)" and folding white space anywhere, a
 *    backslash outside quotes, obs-local-part ("a"."b", "a".b, a . b), the
 *    trailing dot of an absolute domain; also a display name
 *    ("Alice <a@example.com>"), several addresses, and a source route
 *    ("@relay:a@example.com", obsolete A-d-l of 4.1.2).
 *  - The null reverse-path "<>" is a Reverse-path, not a Mailbox (4.1.2):
 *    refused unless the caller passes MD_ADDRESS_OPT_NULL_PATH (MAIL FROM,
 *    an SPF sender), when "<>" and the empty text are the null path.
 *  - Control characters (C0 with TAB, CR, LF and NUL; DEL; C1) anywhere, and
 *    bytes that are not well-formed UTF-8 (md_utf8_decode), are refused.
 *
 * Grammatical, so accepted, but worth a word from a tool (md_address.flags,
 * md_address_flag_note):
 *  - MD_ADDRESS_QUOTED: 4.1.2 says a receiving host SHOULD avoid mailboxes
 *    that need the Quoted-string form; many systems refuse them.
 *  - MD_ADDRESS_LITERAL: valid (4.1.3), but most servers refuse mail to one.
 *  - MD_ADDRESS_SINGLE_LABEL: "user@localhost", "user@com": Domain allows one
 *    sub-domain, but 2.3.5 wants fully-qualified names in SMTP.
 *  - MD_ADDRESS_NUMERIC_TLD: "user@192.0.2.1": Let-dig includes digits, but
 *    no top-level domain is all-numeric (RFC 3696 2); usually an IP address
 *    that lacks its brackets.
 *  - MD_ADDRESS_UTF8_LOCAL: a non-ASCII local part; only a server that offers
 *    SMTPUTF8 (RFC 6531) can take it, whatever the domain's form.
 *  - MD_ADDRESS_NON_ASCII: any non-ASCII as given (UTF-8 local part or
 *    U-labels): the address as given needs SMTPUTF8.
 *  - MD_ADDRESS_IDN: the domain holds IDN labels (kept as A-labels).
 *
 * INPUT HANDLING, shared by every tool (off with MD_ADDRESS_OPT_EXACT, for
 * text that must already be the Mailbox: a header, an SMTP command):
 *  - blanks around the address are removed and MD_ADDRESS_TRIMMED set: SP,
 *    TAB, and what copying from a page or a document brings along (U+00A0,
 *    U+1680, U+2000..U+200B, U+202F, U+205F, U+3000, U+FEFF);
 *  - one pair of angle brackets around it, as mail programs show addresses
 *    ("<a@example.com>"), is removed and MD_ADDRESS_BRACKETS set;
 *  - nothing inside is changed: a blank inside is what the grammar says it
 *    is (inside quotes: part of the address; elsewhere: an error).
 *
 * BEYOND PARSING: the lookup key (domain in A-labels, lower case; the local
 * part unquoted where quoting is not needed and compared without ASCII case
 * unless asked otherwise), provider rules (dots and +tags at gmail.com) as
 * an "also matches" key, and typo suggestions.  All pure: callers bring
 * the facts (accounts per domain, whether the domain has working MX).
 */
#ifndef MAILDIAG_ADDRESS_H
#define MAILDIAG_ADDRESS_H

#include <stddef.h>
#include "base/base.h"
#include "base/domain.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MD_ADDRESS_LOCAL_MAX 64              /* RFC 5321 4.5.3.1.1, octets */
#define MD_ADDRESS_MAX 254                   /* path limit 256 (4.5.3.1.3) minus "<" ">" */
#define MD_ADDRESS_DOMAIN_MAX MD_DOMAIN_MAX  /* 253: A-label form (RFC 1035 2.3.4) */
#define MD_ADDRESS_DISPLAY_MAX (MD_ADDRESS_MAX + 1)  /* every form fits MD_ADDRESS_MAX */

/* Options for md_address_parse_len. */
#define MD_ADDRESS_OPT_EXACT     0x1u  /* the text is the Mailbox itself: no blanks or
                                        * angle brackets removed (a header, a command) */
#define MD_ADDRESS_OPT_NULL_PATH 0x2u  /* the null reverse-path is accepted: "<>" and ""
                                        * ("" only, with MD_ADDRESS_OPT_EXACT) */

/* What md_address_parse_len found (md_address.flags). */
#define MD_ADDRESS_QUOTED        0x001u  /* the local part is a Quoted-string */
#define MD_ADDRESS_LITERAL       0x002u  /* the domain is an address literal */
#define MD_ADDRESS_SINGLE_LABEL  0x004u  /* the domain is one label */
#define MD_ADDRESS_NUMERIC_TLD   0x008u  /* the domain's last label is all digits */
#define MD_ADDRESS_UTF8_LOCAL    0x010u  /* the local part is not ASCII: needs SMTPUTF8 */
#define MD_ADDRESS_NON_ASCII     0x020u  /* not ASCII as given: as given, needs SMTPUTF8 */
#define MD_ADDRESS_IDN           0x040u  /* the domain holds IDN labels */
#define MD_ADDRESS_NULL          0x080u  /* the null reverse-path (MD_ADDRESS_OPT_NULL_PATH) */
#define MD_ADDRESS_TRIMMED       0x100u  /* input handling removed blanks around it */
#define MD_ADDRESS_BRACKETS      0x200u  /* input handling removed "<" ">" around it */
/* Grammatical, but worth a warning from a tool. */
#define MD_ADDRESS_UNUSUAL (MD_ADDRESS_QUOTED | MD_ADDRESS_LITERAL | MD_ADDRESS_SINGLE_LABEL | \
                            MD_ADDRESS_NUMERIC_TLD | MD_ADDRESS_UTF8_LOCAL)
/* The text given was not exactly the Mailbox. */
#define MD_ADDRESS_CHANGED (MD_ADDRESS_TRIMMED | MD_ADDRESS_BRACKETS)

typedef struct md_address {
    char mailbox[MD_ADDRESS_MAX + 1];      /* the Mailbox as given, without what input
                                            * handling removed; "" for the null path */
    char local[MD_ADDRESS_LOCAL_MAX + 1];  /* as written: quotes and escapes kept */
    char domain[MD_ADDRESS_DOMAIN_MAX + 1];/* A-labels, lower case; or "[literal]" */
    char domain_unicode[MD_ADDRESS_MAX + 1]; /* U-label form when it differs, else "" */
    char ascii[MD_ADDRESS_MAX + 1];        /* local@domain (A-labels): ASCII unless
                                            * MD_ADDRESS_UTF8_LOCAL */
    char display[MD_ADDRESS_DISPLAY_MAX];  /* local@domain as people read it (U-labels) */
    unsigned flags;                        /* MD_ADDRESS_QUOTED ... */
} md_address;

/*
 * THE grammar (see the top of this file).  Parses text[0..len) (it may hold
 * NUL bytes: they are refused) with opts (MD_ADDRESS_OPT_*) and fills *out,
 * also on failure as far as it got (flags, at least).  Returns MD_OK, or
 * MD_CONFIG with err->text saying in plain words what is wrong, where
 * ("at character N", counting from 1 in the text as given) and by which
 * RFC section; stage "input.address".
 */
MD_API md_status md_address_parse_len(const char *text, size_t len, unsigned opts, md_address *out,
                                      md_error *err);

/* An address typed by a person (a command-line operand, a line of a file):
 * md_address_parse_len(input, strlen(input), 0, out, err); input may be
 * NULL ("no address given"). */
MD_API md_status md_address_parse(const char *input, md_address *out, md_error *err);

/*
 * Whether mailbox is exactly an RFC 5321 Mailbox that may go on the wire or
 * into a header as it is (md_address_parse_len with MD_ADDRESS_OPT_EXACT and
 * opts; MD_ADDRESS_OPT_NULL_PATH lets "" stand for the null reverse-path).
 * *flags (may be NULL) receives md_address.flags.  Returns MD_OK or
 * MD_CONFIG with err, as md_address_parse_len.
 */
MD_API md_status md_address_check(const char *mailbox, unsigned opts, unsigned *flags, md_error *err);

/* Plain words for one result flag (MD_ADDRESS_QUOTED ...), for a tool's
 * note or warning: static text, NULL for 0, several bits or an unknown one. */
MD_API const char *md_address_flag_note(unsigned flag);
/* A short name for one result flag ("quoted", "literal", ...), for JSON:
 * static text, NULL as above. */
MD_API const char *md_address_flag_name(unsigned flag);

/* Flags for md_address_key. */
#define MD_ADDRESS_CASE_SENSITIVE 0x1u   /* keep the local part's case */

/*
 * The lookup key of a parsed address: "local@domain" with the domain in
 * A-labels, lower case; the local part unquoted when its content is a valid
 * dot-string (else re-quoted with the fewest escapes), and its ASCII
 * letters lower-cased unless MD_ADDRESS_CASE_SENSITIVE.  key needs at least
 * MD_ADDRESS_MAX + 1 bytes (a key is never longer than a.ascii).  Parsing
 * the key again gives the same key.  Returns MD_OK, or MD_CONFIG when key
 * is small or a is the null path.
 */
MD_API md_status md_address_key(const md_address *a, unsigned flags, char *key, size_t size);

/*
 * The provider key: for mailbox providers that ignore dots and +tags in the
 * local part (gmail.com, googlemail.com), the form every spelling of the
 * same mailbox shares ("johnsmith@gmail.com").  Returns 1 and fills key when
 * a provider rule applies, 0 (key "") when none does.  Only ever a hint:
 * "also matches", never the lookup key.
 */
MD_API int md_address_provider_key(const md_address *a, char *key, size_t size);

/* Optimal-string-alignment edit distance (insert, delete, substitute,
 * swap two neighbours) between a and b, ASCII bytes; stops counting above
 * max and then returns max + 1. */
MD_API unsigned md_address_distance(const char *a, const char *b, unsigned max);

/* Whether domain (A-label, lower case) is one of the common mailbox
 * providers in the built-in list. */
MD_API int md_address_is_common_provider(const char *domain);

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
MD_API int md_address_suggest(const char *domain, const md_address_typo_facts *facts,
                              char *suggestion, size_t size, unsigned *distance);

#ifdef __cplusplus
}
#endif
#endif
