/*
 * maildiag-bounces: "maildiag-user bounces", run by maildiag-user (see
 * maildiag-user.1).  Reads a bounce mailbox over IMAP, a Maildir or files,
 * parses each message (lib/bounce), and turns hard bounces and complaints
 * into suppressions in the store (lib/store), each message in one
 * transaction with its audit records; --apply writes, the default shows.
 *
 * A program of its own so that maildiag-user never loads libcurl and GMime
 * (about forty shared libraries) for its other commands.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "usercli.h"
#include "bounce/bounce.h"
#include "imap/imap.h"

static const char *prog = "maildiag-user";

#define MAX_MESSAGES_DEFAULT 10000u
#define MAX_SIZE_DEFAULT (10u << 20)

typedef struct options {
    ucli u;
    cli_format format;
    const char *mailbox, *password_file, *ca_file, *maildir;
    char **files;
    size_t nfiles;
    int64_t since;
    int apply, insecure;
    unsigned max_messages, max_size_kb;
    double timeout, deadline;
} options;

typedef struct counts {
    unsigned long messages, hard, soft, complaints, reported, not_bounce, malformed, unreadable;
    unsigned long suppressed, would, already;
} counts;

typedef struct run {
    options *o;
    const char *source;   /* the mailbox URL, the Maildir, "files" */
    counts n;
    json_t *messages;     /* --json */
    cli_progress progress;
    int store_failed;
} run;

static void usage(void)
{
    printf("Usage: %s [OPTION]... bounces --mailbox URL | --maildir DIR | --file PATH...\n"
           "Read a bounce mailbox and suppress the addresses that bounced hard or complained.\n\n"
           "  --mailbox URL              imaps://USER@HOST[:PORT][/FOLDER] or imap://... (STARTTLS)\n"
           "  --mailbox-password-file FILE  the IMAP password (else MAILDIAG_IMAP_PASSWORD)\n"
           "  --ca-file FILE             CA certificates for the IMAP server\n"
           "  --insecure                 do not verify the IMAP server's certificate\n"
           "  --maildir DIR              read a Maildir (new/ and cur/) instead\n"
           "  --file PATH                read one message file (repeatable)\n"
           "  --since DATE               only messages that arrived on or after DATE (ISO 8601)\n"
           "  --apply                    write the suppressions (default: show what would change)\n"
           "  --max-messages N           read at most N messages (default %u)\n"
           "  --max-size KB              skip larger messages (default %u)\n"
           "  -t, --timeout SECONDS      IMAP: budget of each operation (default 30)\n"
           "      --deadline SECONDS     IMAP: budget of the whole run (default none)\n"
           "      --store URI, -C, --config FILE, --operator NAME, -j, --json: as for every command\n\n"
           "Exits 0 when suppressions were made (or would be), 1 when there was nothing to do or a\n"
           "report was malformed (skipped with a warning), 3 when the mailbox or the store failed.\n",
           prog, MAX_MESSAGES_DEFAULT, MAX_SIZE_DEFAULT >> 10);
}

static int parse_options(int argc, char **argv, options *o)
{
    enum { OPT_OPERATOR = 256, OPT_MAILBOX, OPT_PWFILE, OPT_CAFILE, OPT_INSECURE, OPT_MAILDIR, OPT_FILE,
           OPT_SINCE, OPT_APPLY, OPT_MAXMSG, OPT_MAXSIZE, OPT_DEADLINE, OPT_IGNORED, OPT_STORE };
    static const struct option longopts[] = {
        { "store", required_argument, NULL, OPT_STORE }, { "config", required_argument, NULL, 'C' },
        { "operator", required_argument, NULL, OPT_OPERATOR }, { "json", no_argument, NULL, 'j' },
        { "mailbox", required_argument, NULL, OPT_MAILBOX },
        { "mailbox-password-file", required_argument, NULL, OPT_PWFILE },
        { "ca-file", required_argument, NULL, OPT_CAFILE }, { "insecure", no_argument, NULL, OPT_INSECURE },
        { "maildir", required_argument, NULL, OPT_MAILDIR }, { "file", required_argument, NULL, OPT_FILE },
        { "since", required_argument, NULL, OPT_SINCE }, { "apply", no_argument, NULL, OPT_APPLY },
        { "max-messages", required_argument, NULL, OPT_MAXMSG },
        { "max-size", required_argument, NULL, OPT_MAXSIZE },
        { "timeout", required_argument, NULL, 't' }, { "deadline", required_argument, NULL, OPT_DEADLINE },
        /* maildiag-user's options for its other commands, accepted there and here */
        { "no-dns", no_argument, NULL, OPT_IGNORED }, { "resolver", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, 'V' }, { NULL, 0, NULL, 0 }
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":C:jt:r:hV", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_STORE: o->u.store_uri = optarg; break;
        case 'C': o->u.config_path = optarg; break;
        case 'j': if (cli_format_set(prog, &o->format, CLI_JSON) != 0) return -1; break;
        case OPT_OPERATOR: o->u.operator_name = optarg; break;
        case OPT_MAILBOX: o->mailbox = optarg; break;
        case OPT_PWFILE: o->password_file = optarg; break;
        case OPT_CAFILE: o->ca_file = optarg; break;
        case OPT_INSECURE: o->insecure = 1; break;
        case OPT_MAILDIR: o->maildir = optarg; break;
        case OPT_FILE:
            o->files = md_xrealloc(o->files, (o->nfiles + 1) * sizeof *o->files);
            o->files[o->nfiles++] = optarg;
            break;
        case OPT_SINCE:
            if (md_store_time_parse(optarg, &o->since) != 0)
            {
                cli_usage_error(prog, "--since: '%s' is not a date (2026-11-26 or ISO 8601)", optarg);
                return -1;
            }
            break;
        case OPT_APPLY: o->apply = 1; break;
        case OPT_MAXMSG:
            if (cli_parse_uint(prog, "--max-messages", optarg, 10000000, &o->max_messages) != 0)
                return -1;
            break;
        case OPT_MAXSIZE:
            if (cli_parse_uint(prog, "--max-size", optarg, MD_BOUNCE_MAX_SIZE >> 10, &o->max_size_kb) != 0)
                return -1;
            break;
        case 't':
            if (cli_parse_timeout(prog, optarg, &o->timeout) != 0)
                return -1;
            break;
        case OPT_DEADLINE:
            if (cli_parse_timeout(prog, optarg, &o->deadline) != 0)
                return -1;
            break;
        case 'r': case OPT_IGNORED: break;
        default: {
            int rc = cli_option_common(c, prog, argv, usage);
            if (rc != 0)
                return rc;
            break;
        }
        }
    }
    int n = argc - optind;
    const char *why = NULL;
    if (n != 1 || strcmp(argv[optind], "bounces") != 0)
        why = "bounces takes no operand (give --mailbox, --maildir or --file)";
    else if (!!o->mailbox + !!o->maildir + !!o->nfiles != 1)
        why = "bounces reads one of --mailbox URL, --maildir DIR or --file PATH";
    else if (!o->mailbox && (o->password_file || o->ca_file || o->insecure))
        why = "--mailbox-password-file, --ca-file and --insecure go with --mailbox";
    if (why) {
        cli_usage_error(prog, "%s", why);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ one message */

/* A label for a message from the network or a file name: printable. */
static void label_of(char *out, size_t size, const char *s)
{
    md_sanitize(out, size, s, strlen(s));
}

static void warn(const char *label, const char *text)
{
    cli_error(prog, "warning: %s: %s", label, text);
}

/* A string member of o, or NULL (also for JSON null). */
static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The catalogue id and the suppression reason for one recipient, or NULL
 * reason when it is only reported. */
static const char *verdict(const md_bounce *b, const md_bounce_recipient *rc, const char **reason)
{
    *reason = NULL;
    if (b->kind == MD_BOUNCE_ARF) {
        if (md_bounce_is_complaint(b)) {
            *reason = "complaint";
            return "bounce.complaint";
        }
        return "bounce.feedback";
    }
    if (rc->action == MD_BOUNCE_FAILED && rc->status[0] == '5') {
        *reason = "hard-bounce";
        return "bounce.hard";
    }
    if (rc->action == MD_BOUNCE_DELAYED || rc->status[0] == '4' || rc->action == MD_BOUNCE_FAILED)
        return "bounce.soft";
    return "bounce.delivered";
}

static void handle(run *r, const char *label, uint32_t uid, const char *data, size_t len, int64_t arrived)
{
    options *o = r->o;
    md_error err = { 0 };
    md_bounce *b = NULL;
    json_t *jm = json_pack("{s:s}", "message", label);
    if (uid)
        json_object_set_new(jm, "uid", json_integer(uid));
    r->n.messages++;
    if (md_bounce_parse(data, len, &b, &err) != MD_OK) {
        char *id = md_bounce_message_id(data, len);
        char where[600];
        snprintf(where, sizeof where, "%s%s%s%s", label, id ? " <" : "", id ? id : "", id ? ">" : "");
        char text[400];
        snprintf(text, sizeof text, "malformed report, skipped (nothing applied): %s", err.text);
        warn(where, text);
        json_object_set_new(jm, "message_id", id ? json_string(id) : json_null());
        json_object_set_new(jm, "id", json_string("bounce.malformed"));
        json_object_set_new(jm, "error", json_string(err.text));
        free(id);
        r->n.malformed++;
        goto done;
    }
    md_report *br = md_report_new("bounce", NULL);
    md_bounce_describe(b, br);
    json_object_set(jm, "bounce", md_report_fields(br));
    md_report_free(br);
    if (b->kind == MD_BOUNCE_NONE) {
        r->n.not_bounce++;
        json_object_set_new(jm, "id", json_string("bounce.none"));
        if (o->format != CLI_JSON)
            cli_line(stdout, "%s: not a bounce", label);
        goto done;
    }
    /* what each recipient asks for */
    md_store_suppression *sup = md_xcalloc(b->nrcpt + 1, sizeof *sup);
    char (*keys)[MD_ADDRESS_MAX + 1] = md_xcalloc(b->nrcpt + 1, sizeof *keys);
    char **texts = md_xcalloc(b->nrcpt + 1, sizeof *texts);
    size_t nsup = 0;
    json_t *acts = json_array();
    int64_t since = b->date ? b->date : arrived ? arrived : (int64_t)time(NULL);
    for (size_t i = 0; i < b->nrcpt; i++) {
        const md_bounce_recipient *rc = &b->rcpt[i];
        const char *reason, *id = verdict(b, rc, &reason);
        md_address a;
        json_t *act = json_pack("{s:s,s:s,s:s?,s:s?,s:s?}", "id", id, "address", rc->address,
                                "action", rc->action ? md_bounce_action_name(rc->action) : NULL,
                                "status", rc->status[0] ? rc->status : NULL, "diagnostic", rc->diagnostic);
        const char *result = "reported";
        if (strcmp(id, "bounce.soft") == 0)
            r->n.soft++;
        else if (reason == NULL)
            r->n.reported++;
        if (reason && md_address_parse(rc->address, &a, &err) != MD_OK) {
            char text[400];
            snprintf(text, sizeof text, "the bounce names '%s', which is not an address: skipped", rc->address);
            warn(label, text);
            result = "invalid_address";
            reason = NULL;
        }
        if (reason) {
            if (strcmp(reason, "complaint") == 0)
                r->n.complaints++;
            else
                r->n.hard++;
            md_address_key(&a, o->u.aopt.key_flags, keys[nsup], sizeof keys[nsup]);
            texts[nsup] = md_xasprintf("%s%s%s%s", rc->status[0] ? rc->status : "",
                                       rc->status[0] && (rc->diagnostic || b->feedback_type) ? " " : "",
                                       rc->diagnostic ? rc->diagnostic : b->feedback_type ? b->feedback_type : "",
                                       b->standard ? "" : " (non-standard bounce)");
            sup[nsup] = (md_store_suppression){ .address = keys[nsup], .reason = (char *)reason,
                                                .since = since, .text = texts[nsup] };
            md_store_suppression cur;
            if (r->o->u.store && md_store_suppression_get(r->o->u.store, keys[nsup], &cur, &err) == MD_OK) {
                result = "already_suppressed";
                md_store_suppression_clear(&cur);
            } else {
                result = o->apply ? "suppressed" : "would_suppress";
            }
            json_object_set_new(act, "reason", json_string(reason));
            nsup++;
        }
        json_object_set_new(act, "result", json_string(result));
        json_array_append_new(acts, act);
    }
    int already = 0, failed = 0;
    unsigned long changed = 0;
    if (nsup && o->u.store) {
        md_status st = o->apply
            ? md_store_bounce_apply(o->u.store, b->key, r->source, sup, nsup, ucli_operator(&o->u), &changed,
                                    &already, &err)
            : md_store_bounce_applied(o->u.store, b->key, &already, &err);
        if (st != MD_OK) {
            ucli_error(&o->u, "store", &err);
            r->store_failed = failed = 1;
        }
    }
    for (size_t i = 0; i < json_array_size(acts); i++) {
        json_t *act = json_array_get(acts, i);
        const char *res = jstr(act, "result");
        if (already && json_object_get(act, "reason"))
            json_object_set_new(act, "result", json_string(res = "already_applied"));
        if (failed && o->apply && strcmp(res, "suppressed") == 0)   /* rolled back with the message */
            json_object_set_new(act, "result", json_string(res = "not_applied"));
        if (strcmp(res, "suppressed") == 0 || strcmp(res, "would_suppress") == 0) {
            if (o->apply)
                r->n.suppressed++;
            else
                r->n.would++;
        } else if (strcmp(res, "already_applied") == 0 || strcmp(res, "already_suppressed") == 0)
            r->n.already++;
        if (o->format != CLI_JSON) {
            const char *diag = jstr(act, "diagnostic"), *rsn = jstr(act, "reason"), *act_s = jstr(act, "action");
            cli_line(stdout, "%s: %s%s: %s %s %s: %s%s%s%s", label, md_bounce_kind_name(b->kind),
                   b->standard ? "" : " (non-standard)", jstr(act, "address"),
                   act_s ? act_s : b->feedback_type ? b->feedback_type : "feedback",
                   jstr(act, "status") ? jstr(act, "status") : "-",
                   strcmp(res, "would_suppress") == 0 ? "would suppress" : strcmp(res, "suppressed") == 0
                   ? "suppressed" : strcmp(res, "not_applied") == 0 ? "NOT suppressed (the store failed)"
                   : strcmp(res, "already_applied") == 0 ? "already applied"
                   : strcmp(res, "already_suppressed") == 0 ? "already suppressed"
                   : strcmp(res, "invalid_address") == 0 ? "not an address" : "reported only",
                   rsn ? " (" : "", rsn ? rsn : "", rsn ? ")" : "");
            if (diag)
                cli_line(stdout, "    %s", diag);
        }
    }
    json_object_set_new(jm, "actions", acts);
    for (size_t i = 0; i < nsup; i++)
        free(texts[i]);
    free(texts);
    free(keys);
    free(sup);
done:
    if (r->messages)
        json_array_append_new(r->messages, jm);
    else
        json_decref(jm);
    md_bounce_free(b);
    if (r->n.messages % 64 == 0)
        cli_progress_update(&r->progress, "messages", r->n.messages, r->n.messages);
}

/* ----------------------------------------------------------------- sources */

/* The file's bytes, at most max (more: *too_big).  Caller frees. */
static char *read_file(const char *path, size_t max, size_t *len, int *too_big)
{
    *too_big = 0;
    int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return NULL;
    size_t cap = 65536, n = 0;
    char *buf = md_xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap > max)
                break;
            cap *= 2;
            buf = md_xrealloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            close(fd);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            *too_big = 1;
            break;
        }
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void handle_file(run *r, const char *path, size_t max)
{
    char label[600];
    size_t len = 0;
    int big;
    label_of(label, sizeof label, path);
    char *data = read_file(path, max, &len, &big);
    if (data == NULL || big) {
        warn(label, big ? "larger than --max-size: skipped" : strerror(errno));
        r->n.unreadable++;
    } else {
        struct stat st;
        handle(r, label, 0, data, len, stat(path, &st) == 0 ? (int64_t)st.st_mtime : 0);
    }
    free(data);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_maildir(run *r, size_t max)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    int found = 0;
    for (int k = 0; k < 2; k++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", r->o->maildir, k ? "cur" : "new");
        DIR *d = opendir(dir);
        if (d == NULL)
            continue;
        found = 1;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            if (n == cap)
                names = md_xrealloc(names, (cap = cap ? cap * 2 : 256) * sizeof *names);
            names[n++] = md_xasprintf("%s/%s", dir, e->d_name);
        }
        closedir(d);
    }
    if (!found) {
        cli_fail(prog, "bounce.mailbox_error", "bounces: %s is not a Maildir (no new/ or cur/)", r->o->maildir);
        free(names);
        return -1;
    }
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (!r->store_failed && !cli_interrupted && i < r->o->max_messages && (r->o->since == 0 || (stat(names[i], &st) == 0 && st.st_mtime >= r->o->since)))
            handle_file(r, names[i], max);
        free(names[i]);
    }
    if (n > r->o->max_messages)
        cli_error(prog, "warning: %zu messages in %s: only the first %u were read (--max-messages)", n,
                  r->o->maildir, r->o->max_messages);
    free(names);
    return 0;
}

static int read_mailbox(run *r, size_t max, json_t **info)
{
    options *o = r->o;
    md_error err = { 0 };
    md_imap *m = NULL;
    md_imap_uids u = { 0 };
    md_imap_info *infos = NULL;
    int rc = -1;
    char *pw = NULL;
    if (o->password_file)
        pw = cli_read_secret_file(prog, "IMAP password", o->password_file);
    else if (getenv("MAILDIAG_IMAP_PASSWORD") && *getenv("MAILDIAG_IMAP_PASSWORD"))
        pw = md_xstrdup(getenv("MAILDIAG_IMAP_PASSWORD"));
    else
        cli_fail(prog, "config.error", "bounces: no IMAP password: give --mailbox-password-file FILE or set"
                 " MAILDIAG_IMAP_PASSWORD");
    if (pw == NULL)
        return -1;
    md_imap_options io = { .url = o->mailbox, .password = pw, .ca_file = o->ca_file, .insecure = o->insecure,
                           .timeout_ms = (unsigned)(o->timeout * 1000), .deadline_ms = (unsigned)(o->deadline * 1000),
                           .max_message = max, .max_results = o->max_messages };
    md_status st = md_imap_open(&io, &m, &err);
    cli_secret_free(pw);
    if (st != MD_OK) {
        ucli_fail(&o->u, "bounce.mailbox_error", "mailbox", &err);
        return -1;
    }
    if (!md_imap_tls(m))
        cli_error(prog, "warning: the connection to %s was not encrypted (the server offered no STARTTLS): "
                  "the password went in clear; use imaps://", md_imap_host(m));
    *info = json_pack("{s:b,s:s,s:s}", "tls", md_imap_tls(m), "tls_version", md_imap_tls_version(m),
                      "folder", md_imap_folder(m));
    if ((st = md_imap_search_since(m, o->since, &u, &err)) != MD_OK) {
        ucli_fail(&o->u, "bounce.mailbox_error", "mailbox search", &err);
        goto done;
    }
    if (u.truncated)
        fprintf(stderr, "%s: warning: more than %u messages in the mailbox: only the first were read "
                        "(--max-messages)\n", prog, o->max_messages);
    infos = md_xcalloc(u.n + 1, sizeof *infos);
    if ((st = md_imap_fetch_infos(m, &u, infos, &err)) != MD_OK) {
        ucli_fail(&o->u, "bounce.mailbox_error", "mailbox", &err);
        goto done;
    }
    for (size_t i = 0; i < u.n && !r->store_failed && !cli_interrupted; i++) {
        char *data = NULL, label[64];
        size_t len = 0;
        md_imap_info in = infos[i];
        snprintf(label, sizeof label, "UID %u", u.v[i]);
        st = md_imap_fetch_known(m, &in, &data, &len, &err);
        if (st == MD_NOTFOUND || (st == MD_PERMFAIL && strcmp(err.stage, "imap.size") == 0)) {
            cli_error(prog, "warning: %s: %s: skipped", label, err.text);
            r->n.unreadable++;
            continue;
        }
        if (st != MD_OK) {
            ucli_fail(&o->u, "bounce.mailbox_error", label, &err);
            goto done;
        }
        handle(r, label, u.v[i], data, len, in.internal_date);
        free(data);
    }
    rc = 0;
done:
    free(infos);
    md_imap_uids_clear(&u);
    md_imap_free(m);
    return rc;
}

/* -------------------------------------------------------------------- main */

/* The counts: one line, or the run's one JSON object, with status sev (the
 * exit status). */
static void summary(run *r, json_t *info, md_severity sev)
{
    const counts *n = &r->n;
    json_t *c = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
        "messages", (json_int_t)n->messages, "hard", (json_int_t)n->hard, "soft", (json_int_t)n->soft,
        "complaints", (json_int_t)n->complaints, "reported", (json_int_t)n->reported,
        "not_bounces", (json_int_t)n->not_bounce, "malformed", (json_int_t)n->malformed,
        "unreadable", (json_int_t)n->unreadable, "suppressed", (json_int_t)n->suppressed,
        "would_suppress", (json_int_t)n->would, "already", (json_int_t)n->already);
    if (r->o->format == CLI_JSON) {
        json_t *j = json_pack("{s:i,s:s,s:s,s:b}", "schema_version", 1, "command", "bounces",
                              "source", r->source, "apply", r->o->apply);
        if (info)
            json_object_update(j, info);
        json_object_set_new(j, "messages", r->messages);
        r->messages = NULL;
        json_object_set_new(j, "counts", c);
        json_object_set_new(j, "status", json_string(md_severity_name(sev)));
        md_buf b = { 0 };
        md_json_append(&b, j);
        MD_BUF_LIT(&b, "\n");
        fwrite(b.data, 1, b.len, stdout);
        free(b.data);
        json_decref(j);
        return;
    }
    printf("%lu message%s: %lu hard bounce%s, %lu complaint%s, %lu delayed, %lu reported only, "
           "%lu not bounces, %lu malformed, %lu unreadable; %lu suppression%s %s, %lu already applied\n",
           n->messages, n->messages == 1 ? "" : "s", n->hard, n->hard == 1 ? "" : "s", n->complaints,
           n->complaints == 1 ? "" : "s", n->soft, n->reported, n->not_bounce, n->malformed, n->unreadable,
           r->o->apply ? n->suppressed : n->would, (r->o->apply ? n->suppressed : n->would) == 1 ? "" : "s",
           r->o->apply ? "made" : "to make (run with --apply)", n->already);
    json_decref(c);
}

int main(int argc, char **argv)
{
    options o = { .u = { .prog = prog }, .timeout = 30 };
    run r = { .o = &o };
    json_t *info = NULL;
    int rc = MD_EXIT_UNKNOWN, p = parse_options(argc, argv, &o);
    if (p != 0) {
        rc = p > 0 ? MD_EXIT_OK : MD_EXIT_UNKNOWN;
        goto done;
    }
    if (o.max_messages == 0)
        o.max_messages = MAX_MESSAGES_DEFAULT;
    size_t max = o.max_size_kb ? (size_t)o.max_size_kb << 10 : MAX_SIZE_DEFAULT;
    if (ucli_load_config(&o.u) != 0)
        goto done;
    /* Without --apply the store is optional: it only tells what was applied before. */
    int have_store = o.u.store_uri || (getenv("MAILDIAG_STORE") && *getenv("MAILDIAG_STORE")) ||
                     ucli_conf(&o.u, "store", "uri");
    if ((o.apply || have_store) && ucli_open_store(&o.u, 0) != 0)
        goto done;
    md_error err = { 0 };
    /* Every message is its own transaction, but they need not each wait for
     * the disk: a run lost in a crash is redone by the next one, which
     * skips what was applied.  One sync at the end makes the run durable. */
    if (o.apply && md_store_sync_relaxed(o.u.store, 1, &err) != MD_OK) {
        ucli_error(&o.u, "store", &err);
        goto done;
    }
    r.source = o.mailbox ? o.mailbox : o.maildir ? o.maildir : "files";
    r.messages = o.format == CLI_JSON ? json_array() : NULL;
    cli_progress_init(&r.progress);
    cli_interrupt_install();   /* stop between messages: each is applied whole or not at all */
    int ok;
    if (o.mailbox)
        ok = read_mailbox(&r, max, &info);
    else if (o.maildir)
        ok = read_maildir(&r, max);
    else {
        for (size_t i = 0; i < o.nfiles && !r.store_failed && !cli_interrupted; i++)
            handle_file(&r, o.files[i], max);
        ok = 0;
    }
    cli_progress_end(&r.progress);
    if (o.apply && md_store_sync_relaxed(o.u.store, 0, &err) != MD_OK) {
        ucli_error(&o.u, "store", &err);
        r.store_failed = 1;
    }
    if (ok != 0 || r.store_failed) {
        rc = MD_EXIT_UNKNOWN;
        goto done;
    }
    md_severity sev = (o.apply ? r.n.suppressed : r.n.would) && !r.n.malformed && !r.n.unreadable
                      ? MD_SEV_OK : MD_SEV_WARNING;
    summary(&r, info, sev);
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        rc = cli_write_failed(prog, errno);
        goto done;
    }
    if (cli_interrupted) {
        rc = cli_interrupt_exit(prog, "messages (each applied whole or not at all)", r.n.messages, NULL);
        goto done;
    }
    rc = md_severity_exit_code(sev);
done:
    json_decref(info);
    json_decref(r.messages);
    free(o.files);
    ucli_clear(&o.u);
    return rc;
}
