/*
 * lib/dns name: validating and normalizing domain names given by people to
 * look up.  The label rules and IDNA live in lib/base (base/domain.h),
 * shared with lib/address; this adds what a lookup wants: names mapped as
 * browsers map them, a trailing dot allowed, IP addresses refused.
 */
#ifndef MAILDIAG_DNS_NAME_H
#define MAILDIAG_DNS_NAME_H

#include <stddef.h>
#include "base/base.h"
#include "base/domain.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MD_DNS_NAME_MAX MD_DOMAIN_MAX   /* 253: presentation form, without the trailing dot */

/*
 * Normalizes a domain name given by a person into its lookup form: IDN
 * converted to A-labels (libidn2, UTS #46 non-transitional mapping with NFC,
 * then IDNA2008), lower case, one trailing dot (the absolute form) removed.
 * Every label must be 1..63 LDH characters not starting or ending with '-',
 * the whole name at most 253 characters, and the name must not be an IP
 * address (md_domain_normalize with MD_DOMAIN_MAP | MD_DOMAIN_ROOT_DOT).
 *
 * ascii (size >= MD_DNS_NAME_MAX + 1) receives the A-label form; unicode,
 * if not NULL, receives the U-label form when it differs from ascii (else
 * ""), truncated to unicode_size.  Returns MD_OK, or MD_CONFIG with err
 * saying what is wrong in plain words.
 */
MD_API md_status md_dns_name_normalize(const char *input, char *ascii, size_t ascii_size,
                                       char *unicode, size_t unicode_size, md_error *err);

/* Whether s is an IPv4 or IPv6 address literal, with or without [ ]. */
MD_API int md_dns_name_is_ip_literal(const char *s);

#ifdef __cplusplus
}
#endif
#endif
