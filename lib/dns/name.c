/* lib/dns name: names to look up, over lib/base's domain checks and IDNA. */
#include "config.h"
#include "name.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/domain.h"

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

md_status md_dns_name_normalize(const char *input, char *ascii, size_t ascii_size,
                                char *unicode, size_t unicode_size, md_error *err)
{
    char work[1024];

    if (unicode && unicode_size)
        unicode[0] = '\0';
    if (ascii_size)
        ascii[0] = '\0';
    if (input == NULL || *input == '\0')
        return md_error_set(err, MD_CONFIG, "input.domain", "empty domain name");
    size_t n = strlen(input);
    if (n >= sizeof work)
        return md_error_set(err, MD_CONFIG, "input.domain",
                            "domain name is %zu characters long (at most 253)", n);
    memcpy(work, input, n + 1);
    if (work[n - 1] == '.')
        work[n - 1] = '\0';
    if (md_dns_name_is_ip_literal(work))
        return md_error_set(err, MD_CONFIG, "input.domain", "'%s' is an IP address, not a domain name", work);
    return md_domain_normalize(input, n, MD_DOMAIN_MAP | MD_DOMAIN_ROOT_DOT, ascii, ascii_size,
                               unicode, unicode_size, NULL, err);
}
