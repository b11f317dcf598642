/* Unit tests for lib/message: every template composes to CRLF MIME; no CR/LF
 * from any user-controlled field reaches a header; RFC 2047; overrides. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "message/message.h"
#include "tap.h"

static md_message_request base_req(const char *tmpl)
{
    static const char *names[] = { "alice", "alice.work" };
    md_message_request r = {
        .template_name = tmpl, .from = "noreply@example.com", .from_name = "Example Support",
        .to = "user@example.com", .product = "Example", .username = "alice",
        .usernames = names, .nusernames = 2,
        .link = "https://example.com/reset?t=abc.def", .expires = 1700003600,
        .test_send = 1, .date = 1700000000,
    };
    return r;
}

/* The header block: everything before the first empty line. */
static char *headers_of(const char *msg)
{
    const char *end = strstr(msg, "\r\n\r\n");
    return end ? strndup(msg, (size_t)(end - msg) + 2) : strdup(msg);
}

/* Every line ends in CRLF; no bare CR or LF anywhere. */
static int crlf_only(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return 0;
        if (s[i] == '\r' && (i + 1 >= len || s[i + 1] != '\n')) return 0;
    }
    return len >= 2 && s[len - 2] == '\r' && s[len - 1] == '\n';
}

/* A body as its reader sees the words: quoted-printable soft line breaks
 * removed (the note may be folded anywhere).  Caller frees. */
static char *unfolded(const char *msg)
{
    char *out = strdup(msg), *w = out;
    for (const char *r = msg; *r; r++) {
        if (r[0] == '=' && r[1] == '\r' && r[2] == '\n') {
            r += 2;
            continue;
        }
        *w++ = *r;
    }
    *w = '\0';
    return out;
}

static size_t longest_line(const char *s)
{
    size_t best = 0, cur = 0;
    for (; *s; s++) {
        if (*s == '\r') continue;
        if (*s == '\n') { if (cur > best) best = cur; cur = 0; } else cur++;
    }
    return best;
}

/* Header field names: each header line that does not start with white space. */
static int header_names_allowed(const char *hdrs)
{
    static const char *allowed[] = { "Date:", "From:", "To:", "Subject:", "Message-ID:", "MIME-Version:",
                                     "Auto-Submitted:", "X-Maildiag-Test:", "Content-Type:", NULL };
    const char *p = hdrs;
    while (*p) {
        if (*p != ' ' && *p != '\t') {
            int found = 0;
            for (int i = 0; allowed[i]; i++)
                if (strncmp(p, allowed[i], strlen(allowed[i])) == 0)
                    found = 1;
            if (!found) { printf("# unexpected header line: %.40s\n", p); return 0; }
        }
        const char *nl = strstr(p, "\r\n");
        if (nl == NULL) break;
        p = nl + 2;
    }
    return 1;
}

/* The body of the part with this Content-Type, quoted-printable decoded
 * (soft breaks joined, =XX decoded, CRLF as LF).  Caller frees. */
static char *qp_part(const char *msg, const char *type)
{
    const char *p = strstr(msg, type);
    p = p ? strstr(p, "\r\n\r\n") : NULL;
    if (p == NULL)
        return strdup("");
    p += 4;
    const char *end = strstr(p, "\r\n--=_md_");
    size_t n = end ? (size_t)(end - p) : strlen(p);
    char *out = malloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '=' && i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
            i += 2;
        } else if (p[i] == '=' && i + 2 < n) {
            char hx[3] = { p[i + 1], p[i + 2], 0 };
            *o++ = (char)strtol(hx, NULL, 16);
            i += 2;
        } else if (!(p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')) {
            *o++ = p[i];
        }
    }
    *o = '\0';
    return out;
}

int main(void)
{
    md_error err;
    md_message *m;
    const char *tmpls[] = { "verify", "reset", "username", "plain" };
    for (size_t i = 0; i < 4; i++) {
        md_message_request r = base_req(tmpls[i]);
        md_status st = md_message_compose(&r, &m, &err);
        is_int(st, MD_OK, "%s composes", tmpls[i]);
        if (st != MD_OK) { printf("# %s\n", err.text); continue; }
        char *h = headers_of(m->data);
        ok(crlf_only(m->data, m->len), "%s: CRLF only", tmpls[i]);
        ok(longest_line(m->data) <= 78, "%s: lines <= 78 (%zu)", tmpls[i], longest_line(m->data));
        ok(header_names_allowed(h), "%s: only our headers", tmpls[i]);
        ok(strstr(h, "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n") != NULL, "%s: Date", tmpls[i]);
        ok(strstr(h, "From: \"Example Support\" <noreply@example.com>\r\n") != NULL, "%s: From", tmpls[i]);
        ok(strstr(h, "To: user@example.com\r\n") != NULL, "%s: To", tmpls[i]);
        ok(strstr(h, "Auto-Submitted: auto-generated\r\n") && strstr(h, "MIME-Version: 1.0\r\n"), "%s: Auto-Submitted, MIME", tmpls[i]);
        ok(strstr(h, "X-Maildiag-Test: yes") != NULL, "%s: test-send marker", tmpls[i]);
        ok(strstr(h, "multipart/alternative") && strstr(m->data, "text/plain; charset=UTF-8") &&
           strstr(m->data, "text/html; charset=UTF-8"), "%s: multipart/alternative text + html", tmpls[i]);
        ok(m->message_id[0] == '<' && strstr(m->message_id, "@example.com>") != NULL, "%s: Message-ID in the sending domain %s", tmpls[i], m->message_id);
        free(h);
        if (i == 2)
            ok(strstr(m->data, "<li>alice.work</li>") && strstr(m->data, "  alice.work"), "username: lists usernames in both parts");
        if (i == 1)
            ok(strstr(m->data, "https://example.com/reset?t=3Dabc.def") != NULL, "reset: link in the body (QP: = as =3D)");
        md_message_free(m);
    }
    /* The program making a test send is named where the caller names it,
     * and nowhere else. */
    {
        md_message_request tr = base_req("plain");
        md_message *tm;
        is_int(md_message_compose(&tr, &tm, &err), MD_OK, "test send without a sender name");
        ok(strstr(tm->data, "X-Maildiag-Test: yes\r\n") != NULL, "unnamed: the bare marker");
        char *body = unfolded(tm->data);
        ok(strstr(body, "sent by support to check delivery") != NULL, "unnamed: the note names no program");
        free(body);
        md_message_free(tm);
        tr.test_sender = "acme-check";
        is_int(md_message_compose(&tr, &tm, &err), MD_OK, "test send with a sender name");
        ok(strstr(tm->data, "X-Maildiag-Test: yes (a test send by acme-check)\r\n") != NULL, "named: in the marker");
        body = unfolded(tm->data);
        ok(strstr(body, "sent by support with acme-check to check delivery") != NULL, "named: in the note");
        free(body);
        md_message_free(tm);
        static const char *const bad[] = { "", "a b", "x)\r\nBcc: y@example.com", "(c)" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            tr.test_sender = bad[i];
            tm = NULL;
            is_int(md_message_compose(&tr, &tm, &err), MD_CONFIG, "sender name %zu refused", i);
            ok(tm == NULL, "... and nothing composed");
        }
    }
    /* Two composes give two Message-IDs. */
    md_message_request r = base_req("plain");
    md_message *m2;
    md_message_compose(&r, &m, &err);
    md_message_compose(&r, &m2, &err);
    ok(strcmp(m->message_id, m2->message_id) != 0, "Message-IDs are unique");
    md_message_free(m); md_message_free(m2);

    /* Injection: every field a user controls, with CR, LF, CRLF and a
     * header after it.  Either refused, or the header never appears. */
    const char *evil[] = { "x\r\nBcc: victim@example.net", "x\nBcc: victim@example.net",
                           "x\rBcc: victim@example.net", "x\x0b" "y", "x\xc2\x85y" /* NEL */, NULL };
    const char *fields[] = { "to", "from", "from_name", "subject", "product", "username", "usernames",
                             "link", "message_id_domain", NULL };
    for (int f = 0; fields[f]; f++) {
        for (int e = 0; evil[e]; e++) {
            r = base_req(strcmp(fields[f], "usernames") == 0 ? "username" : "reset");
            const char *one[1] = { evil[e] };
            char addr[128], link[128];
            snprintf(addr, sizeof addr, "a%s@example.com", evil[e]);
            snprintf(link, sizeof link, "https://example.com/%s", evil[e]);
            if (!strcmp(fields[f], "to")) r.to = addr;
            else if (!strcmp(fields[f], "from")) r.from = addr;
            else if (!strcmp(fields[f], "from_name")) r.from_name = evil[e];
            else if (!strcmp(fields[f], "subject")) r.subject = evil[e];
            else if (!strcmp(fields[f], "product")) r.product = evil[e];
            else if (!strcmp(fields[f], "username")) r.username = evil[e];
            else if (!strcmp(fields[f], "usernames")) { r.usernames = one; r.nusernames = 1; }
            else if (!strcmp(fields[f], "link")) r.link = link;
            else if (!strcmp(fields[f], "message_id_domain")) r.message_id_domain = evil[e];
            md_status st = md_message_compose(&r, &m, &err);
            int safe = st != MD_OK;
            if (st == MD_OK) {
                char *h = headers_of(m->data);
                safe = strstr(h, "Bcc:") == NULL && header_names_allowed(h) && crlf_only(m->data, m->len);
                free(h);
                md_message_free(m);
            }
            ok(safe, "%s with control %d: refused or harmless (%s)", fields[f], e, st != MD_OK ? err.text : "composed");
        }
    }
    /* Ill-formed UTF-8 is refused in every field, not only controls: an
     * overlong CR (E0 80 8D) went base64-encoded into a Subject. */
    const char *illformed[] = { "x\xed\xa0\x80y" /* surrogate */, "x\xe0\x80\x8dy" /* overlong CR */,
                                "x\xc0\x8ay" /* overlong LF */, "x\xf4\x90\x80\x80y" /* > U+10FFFF */,
                                "x\xe2\x82" /* cut short */, "x\x80y", "x\xfey", NULL };
    for (int f = 0; fields[f]; f++) {
        if (!strcmp(fields[f], "link"))
            continue;   /* a link is printable ASCII: checked above */
        for (int e = 0; illformed[e]; e++) {
            r = base_req(strcmp(fields[f], "usernames") == 0 ? "username" : "reset");
            const char *one[1] = { illformed[e] };
            char addr[128];
            snprintf(addr, sizeof addr, "a%s@example.com", illformed[e]);
            if (!strcmp(fields[f], "to")) r.to = addr;
            else if (!strcmp(fields[f], "from")) r.from = addr;
            else if (!strcmp(fields[f], "from_name")) r.from_name = illformed[e];
            else if (!strcmp(fields[f], "subject")) r.subject = illformed[e];
            else if (!strcmp(fields[f], "product")) r.product = illformed[e];
            else if (!strcmp(fields[f], "username")) r.username = illformed[e];
            else if (!strcmp(fields[f], "usernames")) { r.usernames = one; r.nusernames = 1; }
            else if (!strcmp(fields[f], "message_id_domain")) r.message_id_domain = illformed[e];
            md_status st = md_message_compose(&r, &m, &err);
            ok(st == MD_CONFIG, "%s with ill-formed UTF-8 %d refused (%s)", fields[f], e,
               st == MD_OK ? "composed" : err.text);
            if (st == MD_OK)
                md_message_free(m);
        }
    }
    ok(md_message_encode_header("x\xe0\x80\x8dy", 9) == NULL, "the encoder refuses an overlong CR");

    /* Addresses that are not plain addresses. */
    const char *bad_addrs[] = { "", "user", "@example.com", "user@", "a b@example.com", "<a@example.com>",
                                "a@b@example.com", "a@example.com, b@example.com", "a@.example.com", NULL };
    for (int i = 0; bad_addrs[i]; i++)
        is_int(md_message_check_address("to", bad_addrs[i], &err), MD_CONFIG, "address refused: '%s'", bad_addrs[i]);
    is_int(md_message_check_address("to", "j\xc3\xb6rg@b\xc3\xbc" "cher.test", &err), MD_OK, "UTF-8 address accepted");

    /* The address grammar is lib/address's (RFC 5321 4.1.2), the same as
     * every tool's: these three were judged differently before. */
    static const struct { const char *addr; md_status want; const char *why; } grammar[] = {
        { ".test@example.com", MD_CONFIG, "starts with a dot" },
        { "test.@example.com", MD_CONFIG, "ends with a dot" },
        { "test@-example.com", MD_CONFIG, "starts with a hyphen" },
        { "test@example-.com", MD_CONFIG, "ends with a hyphen" },
        { "te..st@example.com", MD_CONFIG, "two dots" },
        { "\"john doe\"@example.com", MD_OK, "" },
        { "\"a,b\"@example.com", MD_OK, "" },
        { "user@[192.0.2.1]", MD_OK, "" },
        { "user@[IPv6:2001:db8::1]", MD_OK, "" },
        { "user@example.com.", MD_CONFIG, "trailing dot" },
        { "(comment)user@example.com", MD_CONFIG, "comment" },
        { " user@example.com", MD_CONFIG, "space at its start" },
        { "\"a\nb\"@example.com", MD_CONFIG, "line feed" },
        { "\"a\\\r\"@example.com", MD_CONFIG, "carriage return" },
    };
    for (size_t i = 0; i < sizeof grammar / sizeof grammar[0]; i++) {
        md_error e = { 0 };
        md_status st = md_message_check_address("to", grammar[i].addr, &e);
        is_int(st, grammar[i].want, "md_message_check_address('%s') (%s)", grammar[i].addr, e.text);
        if (st != MD_OK)
            ok(strncmp(e.text, "to: ", 4) == 0 && strstr(e.text, grammar[i].why) != NULL &&
               strcmp(e.stage, "to") == 0, "the field and the reason: %s", e.text);
    }
    /* A quoted local part and a literal reach the headers as they are; the
     * Message-ID takes the sender's domain in A-labels. */
    r = base_req("plain");
    r.to = "\"john doe\"@example.com";
    r.from = "noreply@b\xc3\xbc" "cher.test";
    is_int(md_message_compose(&r, &m, &err), MD_OK, "quoted To and IDN From compose (%s)", err.text);
    if (m) {
        char *h = headers_of(m->data);
        ok(strstr(h, "\r\nTo: \"john doe\"@example.com\r\n") != NULL, "To: keeps the quoted string");
        ok(strstr(m->message_id, "@xn--bcher-kva.test>") != NULL, "Message-ID in A-labels: %s", m->message_id);
        free(h);
        md_message_free(m);
    }

    /* RFC 2047: non-ASCII subject and name are encoded, long ones folded. */
    r = base_req("plain");
    r.subject = "Passwort zur\xc3\xbc" "cksetzen f\xc3\xbcr Ihr Konto bei Example \xe2\x80\x94 bitte best\xc3\xa4tigen Sie jetzt";
    r.from_name = "J\xc3\xb6rg";
    md_message_compose(&r, &m, &err);
    char *h = headers_of(m->data);
    ok(strstr(h, "Subject: =?UTF-8?B?") && strstr(h, "?=\r\n =?UTF-8?B?"), "non-ASCII subject: folded encoded-words");
    ok(strstr(h, "From: =?UTF-8?B?SsO2cmc=?= <noreply@example.com>") != NULL, "non-ASCII display name encoded");
    ok(longest_line(h) <= 78, "encoded header lines <= 78");
    is_str(m->subject, r.subject, "decoded subject kept");
    free(h);
    md_message_free(m);
    char *e = md_message_encode_header("plain words", 7);
    is_str(e, "plain words", "ASCII header unchanged");
    free(e);
    e = md_message_encode_header("looks =?like?= a word", 7);
    ok(strncmp(e, "=?UTF-8?B?", 10) == 0, "'=?' in ASCII is encoded so it cannot be misread");
    free(e);
    ok(md_message_encode_header("a\r\nb", 7) == NULL, "CRLF refused by the encoder");
    r = base_req("plain");
    r.from_name = "Say \"hi\"";
    md_message_compose(&r, &m, &err);
    ok(strstr(m->data, "From: \"Say \\\"hi\\\"\" <noreply@example.com>") != NULL, "quotes in display name escaped");
    md_message_free(m);

    /* A quoted string cannot fold: a display name too long for a line
     * (up to 998 bytes, a quote or backslash doubled) is encoded-words,
     * which fold, so no line passes 998 octets (RFC 5322 2.1.1). */
    static char longname[MD_MESSAGE_FIELD_MAX + 1];
    const char fills[] = { 'N', '\\', '"' };
    for (size_t i = 0; i < sizeof fills; i++) {
        memset(longname, fills[i], MD_MESSAGE_FIELD_MAX);
        r = base_req("plain");
        r.from_name = longname;
        is_int(md_message_compose(&r, &m, &err), MD_OK, "a %d-byte display name of '%c' (%s)",
               MD_MESSAGE_FIELD_MAX, fills[i], err.text);
        h = headers_of(m->data);
        ok(strstr(h, "\r\nFrom: =?UTF-8?B?") != NULL && strstr(h, "?= <noreply@example.com>\r\n") != NULL,
           "'%c' x %d: encoded-words", fills[i], MD_MESSAGE_FIELD_MAX);
        ok(longest_line(m->data) <= 998, "'%c' x %d: no line over 998 octets (%zu)", fills[i],
           MD_MESSAGE_FIELD_MAX, longest_line(m->data));
        free(h);
        md_message_free(m);
    }
    r = base_req("plain");
    r.from_name = "Example Customer Support, Billing and Accounts Team";
    md_message_compose(&r, &m, &err);
    ok(strstr(m->data, "\r\nFrom: \"Example Customer Support, Billing and Accounts Team\" <") != NULL,
       "a name that fits in the line stays quoted");
    md_message_free(m);
    r = base_req("plain");
    r.from_name = "Example Customer Support, Billing, Accounts and Absolutely Everything Else Team";
    md_message_compose(&r, &m, &err);
    ok(strstr(m->data, "\r\nFrom: =?UTF-8?B?") != NULL, "one that does not is encoded-words");
    md_message_free(m);

    /* HTML escaping of values. */
    r = base_req("reset");
    r.username = "<script>&";
    md_message_compose(&r, &m, &err);
    ok(strstr(m->data, "&lt;script&gt;&amp;") != NULL, "HTML part escapes values");
    md_message_free(m);

    /* Template overrides, unknown placeholders, missing link. */
    char dir[] = "/tmp/md-tmpl-XXXXXX";
    mkdtemp(dir);
    char path[256];
    snprintf(path, sizeof path, "%s/plain.subject", dir);
    FILE *f = fopen(path, "w"); fputs("Custom {{product}} subject\r\nsecond line ignored\n", f); fclose(f);
    snprintf(path, sizeof path, "%s/plain.txt", dir);
    f = fopen(path, "w"); fputs("Custom body for {{to}}.\n", f); fclose(f);
    r = base_req("plain");
    r.template_dir = dir;
    is_int(md_message_compose(&r, &m, &err), MD_OK, "override composes");
    ok(strstr(m->data, "Subject: Custom Example subject\r\n") && strstr(m->data, "Custom body for user@example.com."),
       "override subject and text used; HTML falls back to built-in");
    ok(strstr(m->data, "second line") == NULL, "subject file: first line only");
    md_message_free(m);
    snprintf(path, sizeof path, "%s/plain.html", dir);
    f = fopen(path, "w"); fputs("<p>{{nope}}</p>\n", f); fclose(f);
    ok(md_message_compose(&r, &m, &err) == MD_CONFIG && strstr(err.text, "nope"), "unknown placeholder refused: %s", err.text);
    unlink(path);
    snprintf(path, sizeof path, "%s/plain.txt", dir); unlink(path);
    snprintf(path, sizeof path, "%s/plain.subject", dir); unlink(path);
    rmdir(dir);
    r = base_req("verify");
    r.link = NULL;
    ok(md_message_compose(&r, &m, &err) == MD_CONFIG, "verify without a link refused");
    r = base_req("nonesuch");
    ok(md_message_compose(&r, &m, &err) == MD_CONFIG, "unknown template refused");
    r = base_req("reset");
    r.link_is_test = 1;
    md_message_compose(&r, &m, &err);
    ok(strstr(m->data, "test link") != NULL, "throwaway-key link marked as a test link");
    /* The note goes beside the link, never into it: the href is the link
     * exactly, the note follows the </a>; in text, on the next line. */
    char *html = qp_part(m->data, "text/html"), *text = qp_part(m->data, "text/plain");
    const char *a = strstr(html, "<a href=\"https://example.com/reset?t=abc.def\">");
    ok(a != NULL, "HTML: the href is exactly the link");
    const char *close = a ? strstr(a, "</a>") : NULL;
    const char *note = strstr(html, "test link");
    ok(close && note && note > close, "HTML: the note comes after </a>");
    ok(strstr(text, "https://example.com/reset?t=abc.def\n(test link") != NULL,
       "text: the note on the line after the link");
    free(html); free(text);
    md_message_free(m);
    /* Templates with the link as text, in other tags, and in an <a> that
     * is never closed: the note lands beside the link, outside the tag. */
    char tdir[] = "/tmp/md-tmpl-XXXXXX";
    mkdtemp(tdir);
    static const struct { const char *html, *want; } notes[] = {
        { "<p>{{link}}</p>\n", "<p>https://example.com/reset?t=abc.def (test link: " },
        { "<p><A HREF='{{link}}' class=x>Go {{product}}</A>!</p>\n",
          "<A HREF='https://example.com/reset?t=abc.def' class=x>Go Example</A> (test link: " },
        { "<img src=\"{{link}}\">\n", "<img src=\"https://example.com/reset?t=abc.def\"> (test link: " },
        { "<a href=\"{{link}}\">{{product}}", "<a href=\"https://example.com/reset?t=abc.def\"> (test link: " },
    };
    for (size_t i = 0; i < sizeof notes / sizeof notes[0]; i++) {
        snprintf(path, sizeof path, "%s/reset.html", tdir);
        f = fopen(path, "w"); fputs(notes[i].html, f); fclose(f);
        r = base_req("reset");
        r.link_is_test = 1;
        r.template_dir = tdir;
        is_int(md_message_compose(&r, &m, &err), MD_OK, "template %zu composes", i);
        html = qp_part(m->data, "text/html");
        ok(strstr(html, notes[i].want) != NULL, "template %zu: note beside the link", i);
        if (strstr(html, notes[i].want) == NULL)
            printf("#   got: %.*s\n", (int)strcspn(html, "\n"), html);
        free(html);
        md_message_free(m);
        unlink(path);
    }
    rmdir(tdir);
    return tap_done();
}
