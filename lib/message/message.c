/*
 * lib/message: composing the product's emails (see message.h).
 */
#include "config.h"
#include "message.h"
#include "address/address.h"
#include "base/buf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#define TEMPLATE_FILE_MAX (64 * 1024)

/* --- built-in templates -------------------------------------------------- */
typedef struct tmpl { const char *name, *subject, *txt, *html; } tmpl;

static const tmpl builtin[] = {
    { "verify", "Confirm your email address for {{product}}",
      "Hello{{username_greeting}},\n\n"
      "Please confirm that {{to}} is your email address for {{product}} by opening this link:\n\n"
      "{{link}}\n\n"
      "The link works until {{expires}}.\n"
      "If you did not ask for this, ignore this message.\n\n"
      "-- \n{{product}}\n",
      "<!DOCTYPE html>\n<html><body>\n"
      "<p>Hello{{username_greeting}},</p>\n"
      "<p>Please confirm that {{to}} is your email address for {{product}}:</p>\n"
      "<p><a href=\"{{link}}\">Confirm my address</a></p>\n"
      "<p>The link works until {{expires}}.<br>\n"
      "If you did not ask for this, ignore this message.</p>\n"
      "<p>{{product}}</p>\n</body></html>\n" },
    { "reset", "Reset your {{product}} password",
      "Hello{{username_greeting}},\n\n"
      "Someone asked to reset the password of your {{product}} account. To choose a new password, open this link:\n\n"
      "{{link}}\n\n"
      "The link works until {{expires}} and only once.\n"
      "If you did not ask for this, ignore this message: your password stays as it is.\n\n"
      "-- \n{{product}}\n",
      "<!DOCTYPE html>\n<html><body>\n"
      "<p>Hello{{username_greeting}},</p>\n"
      "<p>Someone asked to reset the password of your {{product}} account.</p>\n"
      "<p><a href=\"{{link}}\">Choose a new password</a></p>\n"
      "<p>The link works until {{expires}} and only once.<br>\n"
      "If you did not ask for this, ignore this message: your password stays as it is.</p>\n"
      "<p>{{product}}</p>\n</body></html>\n" },
    { "username", "Your {{product}} username",
      "Hello,\n\n"
      "You asked which {{product}} usernames belong to {{to}}:\n\n"
      "{{usernames}}\n"
      "If you did not ask for this, ignore this message.\n\n"
      "-- \n{{product}}\n",
      "<!DOCTYPE html>\n<html><body>\n"
      "<p>Hello,</p>\n"
      "<p>You asked which {{product}} usernames belong to {{to}}:</p>\n"
      "{{usernames}}\n"
      "<p>If you did not ask for this, ignore this message.</p>\n"
      "<p>{{product}}</p>\n</body></html>\n" },
    { "plain", "{{product}} test message",
      "This is a test message from {{product}} to {{to}}.\n"
      "If you can read it, mail from {{product}} reaches you.\n",
      "<!DOCTYPE html>\n<html><body>\n"
      "<p>This is a test message from {{product}} to {{to}}.</p>\n"
      "<p>If you can read it, mail from {{product}} reaches you.</p>\n"
      "</body></html>\n" },
    /* --- account notices (lib/account/notify) ---
     * What the owner of an address gets when an account cannot receive what
     * was asked for, or when no account uses the address at all. */
    { "no-account", "Your {{product}} request",
      "Hello,\n\n"
      "Someone, perhaps you, asked {{product}} for help with the account of {{to}}.\n"
      "No {{product}} account uses this address, so there was nothing to send.\n\n"
      "If you have an account, it may use another address (look for a typo), or it\n"
      "may have been created with your work address. If you did not ask, ignore this\n"
      "message.\n\n"
      "-- \n{{product}}\n",
      "<!DOCTYPE html>\n<html><body>\n"
      "<p>Hello,</p>\n"
      "<p>Someone, perhaps you, asked {{product}} for help with the account of {{to}}.\n"
      "No {{product}} account uses this address, so there was nothing to send.</p>\n"
      "<p>If you have an account, it may use another address (look for a typo), or it may have\n"
      "been created with your work address. If you did not ask, ignore this message.</p>\n"
      "<p>{{product}}</p>\n</body></html>\n" },
    { "explain-sso", "How to sign in to {{product}}",
      "Hello{{username_greeting}},\n\n"
      "Someone asked to reset the password of the {{product}} account {{username}}.\n"
      "This account signs in through your organisation's single sign-on, so it has no\n"
      "{{product}} password and no reset link is ever sent. Sign in with your\n"
      "organisation's account; if that fails, your organisation's IT support can help.\n\n"
      "-- \n{{product}}\n",
      "<!DOCTYPE html>\n<html><body>\n"
      "<p>Hello{{username_greeting}},</p>\n"
      "<p>Someone asked to reset the password of the {{product}} account {{username}}.\n"
      "This account signs in through your organisation's single sign-on, so it has no\n"
      "{{product}} password and no reset link is ever sent.</p>\n"
      "<p>Sign in with your organisation's account; if that fails, your organisation's IT\n"
      "support can help.</p>\n"
      "<p>{{product}}</p>\n</body></html>\n" },
    { "explain-deactivated", "Your {{product}} account is deactivated",
      "Hello{{username_greeting}},\n\n"
      "Someone asked for help with the {{product}} account {{username}} of {{to}}.\n"
      "This account is deactivated, so {{product}} sends it no links. If you want to\n"
      "use it again, contact {{product}} support and ask for it to be reactivated.\n\n"
      "-- \n{{product}}\n",
      "<!DOCTYPE html>\n<html><body>\n"
      "<p>Hello{{username_greeting}},</p>\n"
      "<p>Someone asked for help with the {{product}} account {{username}} of {{to}}.\n"
      "This account is deactivated, so {{product}} sends it no links.</p>\n"
      "<p>If you want to use it again, contact {{product}} support and ask for it to be\n"
      "reactivated.</p>\n"
      "<p>{{product}}</p>\n</body></html>\n" },
    { "explain-locked", "Your {{product}} account is locked",
      "Hello{{username_greeting}},\n\n"
      "Someone asked to reset the password of the {{product}} account {{username}}.\n"
      "This account is locked, and for your safety no reset link is sent to a locked\n"
      "account. Contact {{product}} support to unlock it.\n\n"
      "-- \n{{product}}\n",
      "<!DOCTYPE html>\n<html><body>\n"
      "<p>Hello{{username_greeting}},</p>\n"
      "<p>Someone asked to reset the password of the {{product}} account {{username}}.\n"
      "This account is locked, and for your safety no reset link is sent to a locked\n"
      "account.</p>\n"
      "<p>Contact {{product}} support to unlock it.</p>\n"
      "<p>{{product}}</p>\n</body></html>\n" },
    { "verified", "Your {{product}} address is already confirmed",
      "Hello{{username_greeting}},\n\n"
      "Someone asked for a new confirmation link for {{to}} on the {{product}} account\n"
      "{{username}}. This address is already confirmed: nothing more is needed.\n\n"
      "-- \n{{product}}\n",
      "<!DOCTYPE html>\n<html><body>\n"
      "<p>Hello{{username_greeting}},</p>\n"
      "<p>Someone asked for a new confirmation link for {{to}} on the {{product}} account\n"
      "{{username}}. This address is already confirmed: nothing more is needed.</p>\n"
      "<p>{{product}}</p>\n</body></html>\n" },
    /* --- end account notices --- */
};

static const tmpl *builtin_find(const char *name)
{
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (strcmp(builtin[i].name, name) == 0)
            return &builtin[i];
    return NULL;
}

int md_message_template_known(const char *name)
{
    return name != NULL && builtin_find(name) != NULL;
}

/* Reads DIR/NAME.EXT; returns NULL when absent (ENOENT), -1 via *failed on
 * other errors. */
static char *read_override(const char *dir, const char *name, const char *ext, md_error *err,
                           int *failed)
{
    if (dir == NULL)
        return NULL;
    char *path = md_xasprintf("%s/%s.%s", dir, name, ext);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (errno != ENOENT) {
            md_error_set(err, MD_CONFIG, "message.template", "cannot read %s: %s", path, strerror(errno));
            *failed = 1;
        }
        free(path);
        return NULL;
    }
    char *text = md_xmalloc(TEMPLATE_FILE_MAX + 1);
    size_t n = fread(text, 1, TEMPLATE_FILE_MAX + 1, f);
    fclose(f);
    if (n > TEMPLATE_FILE_MAX || memchr(text, 0, n) != NULL) {
        md_error_set(err, MD_CONFIG, "message.template", "%s is over %d bytes or binary", path,
                     TEMPLATE_FILE_MAX);
        *failed = 1;
        free(text);
        free(path);
        return NULL;
    }
    text[n] = '\0';
    /* Templates are edited on any system: store them with \n only. */
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (!(text[i] == '\r' && text[i + 1] == '\n'))
            text[j++] = text[i];
    text[j] = '\0';
    /* What a template holds reaches the parts (and the subject a header):
     * UTF-8 text, tabs and line ends only. */
    size_t bad;
    const char *why;
    if (md_text_check(text, j, "\t\n", &bad, &why) != 0) {
        unsigned long line = 1;
        for (size_t i = 0; i < bad; i++)
            line += text[i] == '\n';
        md_error_set(err, MD_CONFIG, "message.template", "%s line %lu: holds %s", path, line, why);
        *failed = 1;
        free(text);
        free(path);
        return NULL;
    }
    free(path);
    return text;
}

/* --- validation ----------------------------------------------------------- */

/* 1 when s holds a control character (C0, DEL, C1) or is not well-formed
 * UTF-8 (lib/base's strict decoder: no overlong forms, no surrogates);
 * *what gets the reason and *at the 1-based byte. */
static int bad_text(const char *s, const char **what, size_t *at)
{
    size_t bad = 0;
    int rc = md_text_check(s, strlen(s), NULL, &bad, what) != 0;
    *at = bad + 1;
    return rc;
}

static md_status check_text(const char *field, const char *v, md_error *err)
{
    const char *why;
    size_t at;
    if (v == NULL)
        return MD_OK;
    if (strlen(v) > MD_MESSAGE_FIELD_MAX)
        return md_error_set(err, MD_CONFIG, field, "%s: longer than %d bytes", field, MD_MESSAGE_FIELD_MAX);
    if (bad_text(v, &why, &at))
        return md_error_set(err, MD_CONFIG, field, "%s: holds %s at byte %zu", field, why, at);
    return MD_OK;
}

md_status md_message_check_address(const char *field, const char *addr, md_error *err)
{
    /* A Mailbox is an RFC 5322 addr-spec (quoted strings, literals and
     * RFC 6532 UTF-8 included) and holds no control character: the grammar
     * is all the header needs. */
    md_error e;
    if (md_address_check(addr, 0, NULL, &e) != MD_OK)
        return md_error_set(err, MD_CONFIG, field, "%s: %s", field, e.text);
    return MD_OK;
}

static md_status check_link(const char *link, md_error *err)
{
    if (link == NULL)
        return MD_OK;
    if (strlen(link) > MD_MESSAGE_FIELD_MAX)
        return md_error_set(err, MD_CONFIG, "message.link", "message.link: longer than %d bytes",
                            MD_MESSAGE_FIELD_MAX);
    for (const unsigned char *p = (const unsigned char *)link; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '<' || *p == '>' || *p == '\\')
            return md_error_set(err, MD_CONFIG, "message.link",
                                "message.link: a link is printable ASCII without spaces, quotes or brackets");
    if (strncmp(link, "https://", 8) != 0 && strncmp(link, "http://", 7) != 0)
        return md_error_set(err, MD_CONFIG, "message.link", "message.link: a link starts with https://");
    return MD_OK;
}

/* The name of the program making a test send goes into a header comment:
 * a short word of letters, digits, '.', '_' and '-'. */
static md_status check_sender_name(const char *name, md_error *err)
{
    if (name == NULL)
        return MD_OK;
    size_t n = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");
    if (n == 0 || n > 64 || name[n] != '\0')
        return md_error_set(err, MD_CONFIG, "message.test_sender",
                            "message.test_sender: 1 to 64 letters, digits, '.', '_' or '-'");
    return MD_OK;
}

/* --- encodings ------------------------------------------------------------ */

static int is_ascii_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

/* value (checked text) as RFC 2047 encoded-words, folded with CRLF SP. */
static char *encoded_words(const char *value)
{
    /* Encoded-words of 60 characters ("=?UTF-8?B?" + 48 base64 + "?="): 36
     * bytes of input each, so "Subject: " plus a word stays under 78
     * columns.  Never split a UTF-8 sequence across words (RFC 2047 5). */
    md_buf b = { 0 };
    const char *p = value;
    int first = 1;
    while (*p) {
        size_t n = strlen(p);
        size_t take = n < 36 ? n : 36;
        while (take < n && ((unsigned char)p[take] & 0xc0) == 0x80)
            take--;
        unsigned char enc[64];
        int elen = EVP_EncodeBlock(enc, (const unsigned char *)p, (int)take);
        if (!first)
            md_buf_addstr(&b, "\r\n ");
        md_buf_addstr(&b, "=?UTF-8?B?");
        md_buf_add(&b, enc, (size_t)elen);
        md_buf_addstr(&b, "?=");
        first = 0;
        p += take;
    }
    return md_buf_steal(&b, NULL);
}

char *md_message_encode_header(const char *value, size_t name_len)
{
    const char *why;
    size_t at;
    if (bad_text(value, &why, &at))
        return NULL;
    if (is_ascii_printable(value) && strstr(value, "=?") == NULL && name_len + 2 + strlen(value) <= 78)
        return md_xstrdup(value);
    return encoded_words(value);
}

/* Quoted-printable (RFC 2045 6.7) of text with \n line ends, into CRLF lines
 * of at most 76 characters. */
static void qp_encode(md_buf *out, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '\n') {
            md_buf_addstr(out, "\r\n");
            col = 0;
            continue;
        }
        char enc[4];
        size_t n;
        int last_on_line = p[1] == '\n' || p[1] == '\0';
        if ((*p >= 33 && *p <= 126 && *p != '=') || ((*p == ' ' || *p == '\t') && !last_on_line)) {
            enc[0] = (char)*p;
            n = 1;
        } else {
            enc[0] = '=';
            enc[1] = hex[*p >> 4];
            enc[2] = hex[*p & 15];
            n = 3;
        }
        /* Keep room for a soft break "=" at column 76. */
        if (col + n > 75) {
            md_buf_addstr(out, "=\r\n");
            col = 0;
        }
        md_buf_add(out, enc, n);
        col += n;
    }
    if (col > 0)
        md_buf_addstr(out, "\r\n");
}

static void html_escape(md_buf *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': md_buf_addstr(out, "&amp;"); break;
        case '<': md_buf_addstr(out, "&lt;"); break;
        case '>': md_buf_addstr(out, "&gt;"); break;
        case '"': md_buf_addstr(out, "&quot;"); break;
        case '\'': md_buf_addstr(out, "&#39;"); break;
        default: md_buf_add(out, s, 1);
        }
    }
}

/* --- placeholders --------------------------------------------------------- */
enum mode { M_TEXT, M_HTML, M_HEADER };

typedef struct vars {
    const md_message_request *req;
    char expires[64];
    const char *product;
} vars;

static void put(md_buf *out, enum mode m, const char *v)
{
    if (m == M_HTML)
        html_escape(out, v);
    else
        md_buf_addstr(out, v);
}

#define TEST_LINK_NOTE "(test link: signed with a throwaway key, it will not work)"

/* Copies the template text [p, end), and the test-link note where it is
 * due (*note_at, cleared once written). */
static void put_literal(md_buf *out, const char *p, const char *end, const char **note_at)
{
    if (*note_at != NULL && *note_at >= p && *note_at <= end) {
        md_buf_add(out, p, (size_t)(*note_at - p));
        md_buf_addstr(out, " " TEST_LINK_NOTE);
        p = *note_at;
        *note_at = NULL;
    }
    md_buf_add(out, p, (size_t)(end - p));
}

/* Where the test-link note goes when {{link}} (at open, ending at after)
 * sits inside an HTML tag, as in <a href="{{link}}">: text there would
 * become part of the URL.  After the element's </a> for an <a> tag, else
 * after the tag; NULL when the placeholder is not inside a tag. */
static const char *note_place(const char *t, const char *open, const char *after)
{
    const char *lt = NULL, *gt = NULL;
    for (const char *q = t; q < open; q++) {
        if (*q == '<') lt = q;
        else if (*q == '>') gt = q;
    }
    if (lt == NULL || (gt != NULL && gt > lt))
        return NULL;
    if ((lt[1] == 'a' || lt[1] == 'A') && isspace((unsigned char)lt[2])) {
        const char *c = strcasestr(after, "</a>");
        if (c != NULL)
            return c + 4;
    }
    const char *end = strchr(after, '>');
    return end ? end + 1 : after + strlen(after);
}

static md_status expand(const vars *v, const char *t, enum mode m, md_buf *out, md_error *err)
{
    const md_message_request *r = v->req;
    const char *p = t;
    const char *note_at = NULL;   /* the HTML test-link note is due here */
    while (*p) {
        const char *open = strstr(p, "{{");
        if (open == NULL) {
            put_literal(out, p, p + strlen(p), &note_at);
            break;
        }
        put_literal(out, p, open, &note_at);
        const char *close = strstr(open + 2, "}}");
        if (close == NULL || close - open > 40)
            return md_error_set(err, MD_CONFIG, "message.template", "unterminated placeholder in a template");
        char name[48];
        snprintf(name, sizeof name, "%.*s", (int)(close - open - 2), open + 2);
        if (strcmp(name, "product") == 0) {
            put(out, m, v->product);
        } else if (strcmp(name, "to") == 0) {
            put(out, m, r->to);
        } else if (strcmp(name, "username") == 0) {
            put(out, m, r->username ? r->username : "");
        } else if (strcmp(name, "username_greeting") == 0) {
            if (r->username && *r->username) {
                md_buf_addstr(out, " ");
                put(out, m, r->username);
            }
        } else if (strcmp(name, "link") == 0) {
            if (r->link == NULL)
                return md_error_set(err, MD_CONFIG, "message.link", "the %s template needs a link",
                                    r->template_name);
            put(out, m, r->link);
            /* The note goes beside the link: on the next line in text, after
             * it in HTML, but never into a tag (an href) */
            if (r->link_is_test && m == M_TEXT) {
                md_buf_addstr(out, "\n" TEST_LINK_NOTE);
            } else if (r->link_is_test && m == M_HTML) {
                const char *at = note_place(t, open, close + 2);
                if (at == NULL)
                    md_buf_addstr(out, " " TEST_LINK_NOTE);
                else if (note_at == NULL)
                    note_at = at;
            }
        } else if (strcmp(name, "expires") == 0) {
            put(out, m, v->expires);
        } else if (strcmp(name, "usernames") == 0) {
            if (m == M_HTML)
                md_buf_addstr(out, "<ul>\n");
            for (size_t i = 0; i < r->nusernames; i++) {
                if (m == M_HTML) {
                    md_buf_addstr(out, "<li>");
                    html_escape(out, r->usernames[i]);
                    md_buf_addstr(out, "</li>\n");
                } else {
                    md_buf_addstr(out, "  ");
                    md_buf_addstr(out, r->usernames[i]);
                    md_buf_addstr(out, m == M_HEADER ? " " : "\n");
                }
            }
            if (m == M_HTML)
                md_buf_addstr(out, "</ul>");
        } else {
            return md_error_set(err, MD_CONFIG, "message.template", "unknown placeholder {{%s}}", name);
        }
        p = close + 2;
    }
    if (note_at != NULL)   /* the template ended inside the tag or element */
        md_buf_addstr(out, " " TEST_LINK_NOTE);
    return MD_OK;
}

/* --- composing ------------------------------------------------------------ */

static void random_hex(char *out, size_t nbytes)
{
    unsigned char r[32];
    if (nbytes > sizeof r)
        nbytes = sizeof r;
    if (md_random_bytes(r, nbytes) != 0)
        for (size_t i = 0; i < nbytes; i++)
            r[i] = (unsigned char)(md_now_ms() >> (i % 8));
    for (size_t i = 0; i < nbytes; i++)
        sprintf(out + 2 * i, "%02x", r[i]);
}

void md_message_free(md_message *m)
{
    if (m == NULL)
        return;
    free(m->data);
    free(m->message_id);
    free(m->subject);
    free(m);
}

md_status md_message_compose(const md_message_request *req, md_message **out, md_error *err)
{
    *out = NULL;
    const tmpl *bt = req->template_name ? builtin_find(req->template_name) : NULL;
    if (bt == NULL)
        return md_error_set(err, MD_CONFIG, "message.template",
                            "unknown template '%s' (verify, reset, username, plain)",
                            req->template_name ? req->template_name : "");
    if (md_message_check_address("message.from", req->from, err) != MD_OK ||
        md_message_check_address("message.to", req->to, err) != MD_OK ||
        check_text("message.from_name", req->from_name, err) != MD_OK ||
        check_text("message.subject", req->subject, err) != MD_OK ||
        check_text("message.product", req->product, err) != MD_OK ||
        check_text("message.username", req->username, err) != MD_OK ||
        check_link(req->link, err) != MD_OK || check_sender_name(req->test_sender, err) != MD_OK)
        return err ? err->status : MD_CONFIG;
    for (size_t i = 0; i < req->nusernames; i++)
        if (check_text("message.usernames", req->usernames[i], err) != MD_OK)
            return MD_CONFIG;
    if (req->message_id_domain && (check_text("message.message_id_domain", req->message_id_domain, err) != MD_OK ||
                                   strpbrk(req->message_id_domain, " <>@") != NULL))
        return md_error_set(err, MD_CONFIG, "message.message_id_domain", "bad Message-ID domain");

    vars v = { .req = req, .product = req->product ? req->product : "Example" };
    if (req->expires > 0) {
        time_t t = (time_t)req->expires;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(v.expires, sizeof v.expires, "%Y-%m-%d %H:%M UTC", &tm);
    } else {
        snprintf(v.expires, sizeof v.expires, "a short while");
    }

    int failed = 0;
    char *o_subj = read_override(req->template_dir, bt->name, "subject", err, &failed);
    char *o_txt = failed ? NULL : read_override(req->template_dir, bt->name, "txt", err, &failed);
    char *o_html = failed ? NULL : read_override(req->template_dir, bt->name, "html", err, &failed);
    md_buf subj = { 0 }, txt = { 0 }, html = { 0 }, msg = { 0 };
    char *enc_subj = NULL, *enc_name = NULL;
    md_status st = MD_CONFIG;
    if (failed)
        goto done;
    if (o_subj) {   /* a subject file is one line */
        char *nl = strchr(o_subj, '\n');
        if (nl) *nl = '\0';
    }
    if (req->subject)
        md_buf_addstr(&subj, req->subject);
    else if (expand(&v, o_subj ? o_subj : bt->subject, M_HEADER, &subj, err) != MD_OK)
        goto done;
    if (expand(&v, o_txt ? o_txt : bt->txt, M_TEXT, &txt, err) != MD_OK ||
        expand(&v, o_html ? o_html : bt->html, M_HTML, &html, err) != MD_OK)
        goto done;
    if (req->test_send) {
        md_buf note = { 0 };
        md_buf_addf(&note, "[Test send: this message was sent by support%s%s to check delivery.]\n\n",
                    req->test_sender ? " with " : "", req->test_sender ? req->test_sender : "");
        md_buf_add(&note, txt.data, txt.len);
        md_buf_free(&txt);
        txt = note;
    }
    /* The subject is checked after expansion: a template value must not
     * smuggle a line break in either. */
    if ((enc_subj = md_message_encode_header(md_buf_cstr(&subj), 7)) == NULL) {
        md_error_set(err, MD_CONFIG, "message.subject", "message.subject: holds a line break or control character");
        goto done;
    }
    if (req->from_name && *req->from_name) {
        /* Printable ASCII names are quoted (with \" and \\ escaped) when
         * "From: " and the quoted string fit in 78 columns.  A quoted string
         * cannot be folded: a longer name (up to 998 bytes, each quote or
         * backslash doubled) would make the line longer than the 998
         * octets RFC 5322 2.1.1 allows, so it is encoded-words, which fold,
         * as a non-ASCII name is. */
        md_buf q = { 0 };
        if (is_ascii_printable(req->from_name)) {
            md_buf_addstr(&q, "\"");
            for (const char *p = req->from_name; *p; p++) {
                if (*p == '"' || *p == '\\')
                    md_buf_addstr(&q, "\\");
                md_buf_add(&q, p, 1);
            }
            md_buf_addstr(&q, "\"");
        }
        if (q.len > 0 && 6 + q.len <= 78) {
            enc_name = md_buf_steal(&q, NULL);
        } else {
            md_buf_free(&q);
            enc_name = encoded_words(req->from_name);   /* checked text (check_text above) */
        }
    }

    char idhex[33], bnd[33];
    random_hex(idhex, 16);
    random_hex(bnd, 12);
    /* The sender's domain in A-labels: a Message-ID stays ASCII. */
    md_address *from = md_xmalloc(sizeof *from);
    md_address_parse_len(req->from, strlen(req->from), MD_ADDRESS_OPT_EXACT, from, NULL);
    char *msgid = md_xasprintf("<%s.%lld@%s>", idhex, (long long)time(NULL),
                               req->message_id_domain ? req->message_id_domain : from->domain);
    free(from);

    time_t now = req->date ? req->date : time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char date[64];
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);

    md_buf_addf(&msg, "Date: %s\r\n", date);
    if (enc_name) {
        md_buf_addstr(&msg, "From: ");
        md_buf_addstr(&msg, enc_name);
        md_buf_addstr(&msg, " <");
        md_buf_addstr(&msg, req->from);
        md_buf_addstr(&msg, ">\r\n");
    } else {
        md_buf_addstr(&msg, "From: ");
        md_buf_addstr(&msg, req->from);
        md_buf_addstr(&msg, "\r\n");
    }
    md_buf_addstr(&msg, "To: ");
    md_buf_addstr(&msg, req->to);
    md_buf_addstr(&msg, "\r\nSubject: ");
    md_buf_addstr(&msg, enc_subj);
    md_buf_addstr(&msg, "\r\nMessage-ID: ");
    md_buf_addstr(&msg, msgid);
    md_buf_addstr(&msg, "\r\nMIME-Version: 1.0\r\n"
                  "Auto-Submitted: auto-generated\r\n");
    if (req->test_send && req->test_sender)
        md_buf_addf(&msg, "X-Maildiag-Test: yes (a test send by %s)\r\n", req->test_sender);
    else if (req->test_send)
        MD_BUF_LIT(&msg, "X-Maildiag-Test: yes\r\n");
    md_buf_addf(&msg, "Content-Type: multipart/alternative; boundary=\"=_md_%s\"\r\n\r\n", bnd);
    md_buf_addstr(&msg, "This is a MIME message with a text and an HTML part.\r\n\r\n");
    md_buf_addf(&msg, "--=_md_%s\r\n", bnd);
    md_buf_addstr(&msg, "Content-Type: text/plain; charset=UTF-8\r\n"
                  "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    qp_encode(&msg, md_buf_cstr(&txt));
    md_buf_addf(&msg, "\r\n--=_md_%s\r\n", bnd);
    md_buf_addstr(&msg, "Content-Type: text/html; charset=UTF-8\r\n"
                  "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    qp_encode(&msg, md_buf_cstr(&html));
    md_buf_addf(&msg, "\r\n--=_md_%s--\r\n", bnd);

    md_message *m = md_xcalloc(1, sizeof *m);
    m->data = md_buf_steal(&msg, &m->len);
    m->message_id = msgid;
    m->subject = md_xstrdup(md_buf_cstr(&subj));
    *out = m;
    st = MD_OK;
done:
    free(o_subj); free(o_txt); free(o_html);
    md_buf_free(&subj); md_buf_free(&txt); md_buf_free(&html); md_buf_free(&msg);
    free(enc_subj); free(enc_name);
    return st;
}
