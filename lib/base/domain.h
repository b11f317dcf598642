/*
 * lib/base domain: host names and IDNA2008 (libidn2), for every module that
 * takes a domain from a person: lib/address (the domain of a mailbox) and
 * lib/dns (names to look up, see dns/name.h).
 *
 * It sits in lib/base, below both, because a domain is not a DNS matter
 * only: lib/address must check the domain of an address without pulling in
 * the resolver, and lib/dns must not depend on lib/address.
 *
 * The name is a dot-separated list of labels (RFC 1035 2.3.1, RFC 1123
 * 2.1, and RFC 5321 4.1.2: sub-domain = Let-dig [Ldh-str]):
 *  - an ASCII label is 1 to 63 letters, digits and hyphens, neither first
 *    nor last a hyphen; letters are compared without case and come out in
 *    lower case; a label starting "xn--" is an A-label and must be one
 *    (below);
 *  - a label with non-ASCII characters is a U-label (RFC 5890): valid
 *    IDNA2008 (RFC 5891 5.4: NFC, only PVALID or contextually allowed code
 *    points, RFC 5893 for right-to-left text), converted to its A-label;
 *    ASCII letters in it are lowered first (domains are case-insensitive,
 *    RFC 5321 2.4), nothing else is mapped: "BÜCHER" is not a U-label;
 *  - an A-label must decode to a valid U-label that encodes back to the
 *    same A-label (RFC 5891 5.3/5.4);
 *  - no empty label (a leading dot, two dots in a row), no trailing dot
 *    unless MD_DOMAIN_ROOT_DOT; at most 253 octets in A-label form (255 on
 *    the wire, RFC 1035 2.3.4).
 * Hyphens in the third and fourth position of an ASCII label other than
 * "xn--" are allowed (RFC 5321's Ldh-str allows them; IDNA2008 only
 * reserves them).
 */
#ifndef MAILDIAG_BASE_DOMAIN_H
#define MAILDIAG_BASE_DOMAIN_H

#include <stddef.h>
#include "base/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MD_DOMAIN_MAX 253        /* A-label form, without a trailing dot */
#define MD_DOMAIN_LABEL_MAX 63
/* The longest U-label form of a name of MD_DOMAIN_MAX octets: each
 * character of an A-label's Punycode part may stand for one code point of
 * up to 4 octets. */
#define MD_DOMAIN_UNICODE_MAX (4 * MD_DOMAIN_MAX)

/* Flags for md_domain_normalize. */
#define MD_DOMAIN_ROOT_DOT 0x1u  /* one trailing dot (the absolute form) is dropped */
#define MD_DOMAIN_MAP      0x2u  /* map a name typed by a person first, as browsers
                                  * do (UTS #46 non-transitional, NFC: case, width,
                                  * ideographic full stop ...), and check A-labels by
                                  * decoding only; for names to look up (lib/dns),
                                  * never for the domain of an address */

/* What md_domain_normalize found (*info). */
#define MD_DOMAIN_SINGLE_LABEL 0x1u  /* one label: "localhost", "com" */
#define MD_DOMAIN_NUMERIC_TLD  0x2u  /* the last label is all digits: "192.0.2.1" */
#define MD_DOMAIN_ULABEL       0x4u  /* given with U-labels */
#define MD_DOMAIN_IDN          0x8u  /* holds an IDN label (given as U- or A-label) */

/*
 * Checks the domain name name[0..len) and writes its A-label form, lower
 * case, to ascii (ascii_size >= MD_DOMAIN_MAX + 1), and, when unicode is
 * not NULL, its U-label form to unicode when that differs from the A-label
 * form, else "" (left "" when it does not fit unicode_size; at most
 * MD_DOMAIN_UNICODE_MAX octets).  *info (may be NULL) receives
 * MD_DOMAIN_* facts.  Returns MD_OK, or MD_CONFIG with err (stage
 * "input.domain") saying in plain words which label is wrong and why, with
 * the rule's RFC section.
 */
MD_API md_status md_domain_normalize(const char *name, size_t len, unsigned flags, char *ascii,
                                     size_t ascii_size, char *unicode, size_t unicode_size,
                                     unsigned *info, md_error *err);

#ifdef __cplusplus
}
#endif
#endif
