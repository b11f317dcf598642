/* lib/dns name: domain name validation and IDNA (libidn2). */
#include "config.h"
#include "name.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <idn2.h>

int md_dns_name_is_ip_literal(const char *s)
{
    unsigned char bin[16];
    char buf[64];
    size_t n = strlen(s);

    if (n >= 2 && s[0] == '[' && s[n - 1] == ']' && n - 2 < sizeof buf) {
        memcpy(buf, s + 1, n - 2);
        buf[n - 2] = '\0';
        if (strncasecmp(buf, "IPv6:", 5) == 0)
            memmove(buf, buf + 5, strlen(buf + 5) + 1);
        s = buf;
    }
    return inet_pton(AF_INET, s, bin) == 1 || inet_pton(AF_INET6, s, bin) == 1;
}

static md_status invalid(md_error *err, const char *msg)
{
    return md_error_set(err, MD_CONFIG, "input.domain", "%s", msg);
}

md_status md_dns_name_normalize(const char *input, char *ascii, size_t ascii_size,
                                char *unicode, size_t unicode_size, md_error *err)
{
    char work[1024];
    size_t n;
    int non_ascii = 0;

    if (unicode && unicode_size)
        unicode[0] = '\0';
    if (ascii_size)
        ascii[0] = '\0';
    if (input == NULL || *input == '\0')
        return invalid(err, "empty domain name");
    n = strlen(input);
    if (n >= sizeof work)
        return md_error_set(err, MD_CONFIG, "input.domain",
                            "domain name is %zu characters long (at most 253)", n);
    memcpy(work, input, n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)work[i];
        if (c >= 0x80)
            non_ascii = 1;
        else if (c <= 0x20 || c == 0x7f)
            return invalid(err, "domain name contains a space or control character");
    }
    if (n > 0 && work[n - 1] == '.')    /* the absolute form: fine */
        work[--n] = '\0';
    if (n == 0)
        return invalid(err, "empty domain name (only a dot)");
    if (md_dns_name_is_ip_literal(work))
        return md_error_set(err, MD_CONFIG, "input.domain", "'%s' is an IP address, not a domain name", work);

    if (non_ascii) {
        char *out = NULL;
        int rc = idn2_to_ascii_8z(work, &out, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
        if (rc != IDN2_OK) {
            return md_error_set(err, MD_CONFIG, "input.domain",
                                "not a valid internationalized domain name: %s",
                                idn2_strerror(rc));
        }
        if (strlen(out) >= sizeof work) {
            idn2_free(out);
            return invalid(err, "domain name too long after IDNA conversion");
        }
        strcpy(work, out);
        idn2_free(out);
        n = strlen(work);
    }
    for (size_t i = 0; i < n; i++)
        work[i] = (char)tolower((unsigned char)work[i]);
    if (n > MD_DNS_NAME_MAX)
        return md_error_set(err, MD_CONFIG, "input.domain",
                            "domain name is %zu characters long (at most 253)", n);

    const char *label = work;
    for (;;) {
        const char *dot = strchr(label, '.');
        size_t ll = dot ? (size_t)(dot - label) : strlen(label);
        if (ll == 0)
            return invalid(err, "domain name has an empty label (two dots in a row, or a leading dot)");
        if (ll > 63)
            return md_error_set(err, MD_CONFIG, "input.domain",
                                "a label is %zu characters long (at most 63)", ll);
        for (size_t i = 0; i < ll; i++) {
            char c = label[i];
            if (!(isalnum((unsigned char)c) || c == '-'))
                return md_error_set(err, MD_CONFIG, "input.domain",
                                    "domain name contains the character '%c' (letters, digits and '-' only)", c);
        }
        if (label[0] == '-' || label[ll - 1] == '-')
            return invalid(err, "a label starts or ends with '-'");
        if (dot == NULL)
            break;
        label = dot + 1;
    }
    if (ascii_size <= n)
        return invalid(err, "internal: buffer too small");
    memcpy(ascii, work, n + 1);

    /* Show the U-label form for any name holding A-labels; reject bogus
     * A-labels (not valid Punycode), which no server can hold. */
    if (strstr(work, "xn--") != NULL) {
        char *u = NULL;
        if (idn2_to_unicode_8z8z(work, &u, 0) != IDN2_OK || u == NULL) {
            ascii[0] = '\0';
            return invalid(err, "domain name holds an invalid IDN A-label (xn--)");
        }
        if (unicode && unicode_size && strcmp(u, work) != 0)
            snprintf(unicode, unicode_size, "%s", u);
        idn2_free(u);
    }
    return MD_OK;
}
