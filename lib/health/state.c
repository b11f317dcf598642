/* lib/health state: what the last run found, what changed since, and the
 * lock that keeps two runs from sharing one state (see health.h). */
#include "config.h"
#include "health.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STATE_SCHEMA 1
#define STATE_MAX (4 * 1024 * 1024)   /* a state is a few kB; more is not ours */
#define STATE_DIR_SYSTEM "/var/lib/maildiag"
#define STATE_NAME "health.json"

/* The state is JSON:
 *   {"schema_version": 1, "written": T,
 *    "checks": {"spf": {"status": "ok", "time": T, "since": T,
 *                       "problems": ["spf.fail", ...],
 *                       "listings": {"IP ZONE": "listed", ...},
 *                       "known": {"status": "ok", "time": T, "since": T}}, ...}}
 * time: the check's last run; since: when it came to its status; known: the
 * same of the last run where it was not unknown (what the next run compares
 * with); problems:
 * the ids of its warning and critical findings (dnsbl.listed aside:
 * listings say which); listings: dnsbl's state of each IP on each zone. */
struct md_health_state {
    json_t *root;
};

void md_health_time(int64_t t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(out, size, "%Y-%m-%dT%H:%MZ", &tm) == 0)
        snprintf(out, size, "%lld", (long long)t);
}

/* --- the default path --------------------------------------------------------------- */

static int make_dirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0700);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

md_status md_health_state_path_default(char *out, size_t size, md_error *err)
{
    struct stat st;
    if (stat(STATE_DIR_SYSTEM, &st) == 0 && S_ISDIR(st.st_mode) && access(STATE_DIR_SYSTEM, W_OK | X_OK) == 0) {
        snprintf(out, size, "%s/%s", STATE_DIR_SYSTEM, STATE_NAME);
        return MD_OK;
    }
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    char dir[4096];
    /* XDG Base Directory: a relative XDG_STATE_HOME is invalid and ignored */
    if (xdg && xdg[0] == '/')
        snprintf(dir, sizeof dir, "%s/maildiag", xdg);
    else if (home && home[0] == '/')
        snprintf(dir, sizeof dir, "%s/.local/state/maildiag", home);
    else
        return md_error_set(err, MD_CONFIG, "health.state", "%s is not writable and there is no HOME or"
                            " XDG_STATE_HOME for the state file", STATE_DIR_SYSTEM);
    if (make_dirs(dir) != 0)
        return md_error_set(err, MD_CONFIG, "health.state", "cannot make %s for the state file: %s", dir,
                            strerror(errno));
    if ((size_t)snprintf(out, size, "%s/%s", dir, STATE_NAME) >= size)
        return md_error_set(err, MD_CONFIG, "health.state", "the state file's path is too long");
    return MD_OK;
}

/* --- the lock ----------------------------------------------------------------------- */

struct md_health_lock {
    int fd;
};

md_status md_health_lock_take(const char *state_path, md_health_lock **out, md_error *err)
{
    *out = NULL;
    /* Not the state file itself: each run replaces it with a rename, and a
     * lock lives on an inode.  A run that locked the old inode would go on
     * while the next one locks the new file: both would run.  STATE.lock
     * is never replaced nor removed (removing it would let a run that
     * opened it just before lock a file nobody else can find). */
    char *path = md_xasprintf("%s.lock", state_path);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0) {
        md_status st = md_error_set(err, MD_INTERNAL, "health.lock", "cannot open the lock file %s: %s",
                                    path, strerror(errno));
        free(path);
        return st;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        md_status st = e == EWOULDBLOCK
            ? md_error_set(err, MD_TEMPFAIL, "health.lock", "another run holds the lock %s", path)
            : md_error_set(err, MD_INTERNAL, "health.lock", "cannot lock %s: %s", path, strerror(e));
        free(path);
        return st;
    }
    free(path);
    *out = md_xcalloc(1, sizeof **out);
    (*out)->fd = fd;
    return MD_OK;
}

void md_health_lock_release(md_health_lock *l)
{
    if (l == NULL)
        return;
    close(l->fd);   /* releases the flock */
    free(l);
}

/* --- reading ------------------------------------------------------------------------ */

md_status md_health_state_parse(const char *text, size_t len, const char *name, md_health_state **out,
                                md_error *err)
{
    *out = NULL;
    json_error_t je;
    json_t *root = len <= STATE_MAX ? json_loadb(text, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    json_t *checks = json_object_get(root, "checks");
    if (root == NULL || !json_is_object(root) || json_integer_value(json_object_get(root, "schema_version"))
            != STATE_SCHEMA || !json_is_object(checks)) {
        json_decref(root);
        return md_error_set(err, MD_PROTOCOL, "health.state", "%s is not a state this version reads%s%s", name,
                            root || len > STATE_MAX ? "" : ": ", root || len > STATE_MAX ? "" : je.text);
    }
    *out = md_xcalloc(1, sizeof **out);
    (*out)->root = root;
    return MD_OK;
}

md_status md_health_state_load(const char *path, md_health_state **out, md_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            return md_error_set(err, MD_NOTFOUND, "health.state", "no state file %s yet", path);
        return md_error_set(err, MD_INTERNAL, "health.state", "cannot read the state file %s: %s", path,
                            strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > STATE_MAX) {
        close(fd);
        return md_error_set(err, MD_PROTOCOL, "health.state", "%s is not a state file (not a regular file"
                            " of at most %d bytes)", path, STATE_MAX);
    }
    char *text = md_xmalloc((size_t)st.st_size + 1);
    size_t len = 0;
    while (len < (size_t)st.st_size) {
        ssize_t k = read(fd, text + len, (size_t)st.st_size - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    int rerr = errno;
    close(fd);
    md_status rc = len == (size_t)st.st_size ? md_health_state_parse(text, len, path, out, err)
                 : md_error_set(err, MD_INTERNAL, "health.state", "cannot read the state file %s: %s", path,
                                strerror(rerr));
    free(text);
    return rc;
}

void md_health_state_free(md_health_state *st)
{
    if (st == NULL)
        return;
    json_decref(st->root);
    free(st);
}

static json_t *prev_check(const md_health_state *prev, md_health_check_id c)
{
    json_t *o = prev ? json_object_get(json_object_get(prev->root, "checks"), md_health_check_name(c)) : NULL;
    return json_is_object(o) ? o : NULL;
}

/* The check's status in the state, or -1 (none, or not a status). */
static int prev_status(json_t *o)
{
    const char *s = json_string_value(json_object_get(o, "status"));
    return s ? md_severity_parse(s) : -1;
}

/* --- the current result as problems and listings -------------------------------------- */

/* Whether check c cannot see everything now: a finding of its is unknown.
 * What it found missing is then not known to be gone. */
static int blind(const md_health_check *c)
{
    for (size_t i = 0; i < md_report_count(c->report); i++)
        if (md_report_get(c->report, i)->severity == MD_SEV_UNKNOWN)
            return 1;
    return 0;
}

/* A problem is what is known to be wrong: what could not be seen (unknown)
 * is the check's status, not a problem of the setup. */
static int problem(const md_finding *f)
{
    return f->severity == MD_SEV_WARNING || f->severity == MD_SEV_CRITICAL;
}

static int has_problem(const md_health_check *c, const char *id)
{
    for (size_t i = 0; i < md_report_count(c->report); i++) {
        const md_finding *f = md_report_get(c->report, i);
        if (problem(f) && strcmp(f->id, id) == 0)
            return 1;
    }
    return 0;
}

/* The current problems of c (ids, once each), plus, when c is blind now,
 * the previous ones it cannot see. */
static json_t *problems(const md_health_check *c, json_t *prev)
{
    json_t *a = json_array();
    for (size_t i = 0; i < md_report_count(c->report); i++) {
        const md_finding *f = md_report_get(c->report, i);
        if (!problem(f) || strcmp(f->id, "dnsbl.listed") == 0)
            continue;
        int dup = 0;
        size_t k;
        json_t *v;
        json_array_foreach(a, k, v)
            dup |= strcmp(json_string_value(v), f->id) == 0;
        if (!dup)
            json_array_append_new(a, json_string(f->id));
    }
    size_t k;
    json_t *v;
    if (blind(c))
        json_array_foreach(json_object_get(prev, "problems"), k, v)
            if (json_is_string(v) && !has_problem(c, json_string_value(v)))
                json_array_append(a, v);
    return a;
}

static const char *listing_state_name(md_dnsbl_state s)
{
    return md_dnsbl_state_name(s);
}

/* {"IP ZONE": state}: now's known states, and the previous ones where now
 * knows nothing (unknown, an unusable zone, not asked). */
static json_t *listings(const md_health_result *r, json_t *prev)
{
    json_t *o = json_object();
    json_t *old = json_object_get(prev, "listings");
    const char *k;
    json_t *v;
    json_object_foreach(old, k, v)
        if (json_is_string(v))
            json_object_set(o, k, v);
    for (size_t i = 0; i < r->nlistings; i++) {
        const md_health_listing *l = &r->listings[i];
        if (l->state != MD_DNSBL_LISTED && l->state != MD_DNSBL_NOT_LISTED)
            continue;
        char key[400];
        snprintf(key, sizeof key, "%s %s", l->ip, l->zone);
        json_object_set_new(o, key, json_string(listing_state_name(l->state)));
    }
    return o;
}

/* --- changes ---------------------------------------------------------------------- */

const char *md_health_change_kind_name(md_health_change_kind k)
{
    static const char *const n[] = { "listed", "unlisted", "fixed", "new", "resolved", "status" };
    return (unsigned)k < sizeof n / sizeof n[0] ? n[k] : "unknown";
}

static md_health_change *add_change(md_health_result *r, md_health_check_id c, md_health_change_kind kind,
                                    md_severity from, md_severity to, int64_t since, int64_t was_since,
                                    const char *fmt, ...) __attribute__((format(printf, 8, 9)));
static md_health_change *add_change(md_health_result *r, md_health_check_id c, md_health_change_kind kind,
                                    md_severity from, md_severity to, int64_t since, int64_t was_since,
                                    const char *fmt, ...)
{
    char text[800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    r->changes = md_xrealloc(r->changes, (r->nchanges + 1) * sizeof *r->changes);
    md_health_change *ch = &r->changes[r->nchanges++];
    *ch = (md_health_change){ .check = c, .kind = kind, .from = from, .to = to, .since = since,
                              .was_since = was_since };
    ch->summary = md_sanitize_dup(text, strlen(text));
    return ch;
}

static void compare_listings(md_health_result *r, json_t *old, int64_t since, md_severity from, md_severity to,
                             size_t *n)
{
    char when[32];
    md_health_time(since, when, sizeof when);
    json_t *prev = json_object_get(old, "listings");
    for (size_t i = 0; i < r->nlistings; i++) {
        const md_health_listing *l = &r->listings[i];
        char key[400];
        snprintf(key, sizeof key, "%s %s", l->ip, l->zone);
        const char *was = json_string_value(json_object_get(prev, key));
        int was_listed = was && strcmp(was, "listed") == 0;
        md_health_change *ch = NULL;
        if (l->state == MD_DNSBL_LISTED && !was_listed)
            ch = add_change(r, MD_HEALTH_DNSBL, MD_HEALTH_CHANGE_LISTED, from, to, since, 0,
                            "dnsbl: %s newly listed on %s since %s", l->ip, l->zone, when);
        else if (l->state == MD_DNSBL_NOT_LISTED && was_listed)
            ch = add_change(r, MD_HEALTH_DNSBL, MD_HEALTH_CHANGE_UNLISTED, from, to, since, 0,
                            "dnsbl: %s no longer listed on %s", l->ip, l->zone);
        if (ch) {
            ch->ip = md_xstrdup(l->ip);
            ch->zone = md_xstrdup(l->zone);
            (*n)++;
        }
    }
}

/* The check's last known result ("known": status, time, since), from a
 * run where it was not unknown; NULL when it never was. */
static json_t *known_block(json_t *old)
{
    json_t *k = json_object_get(old, "known");
    return json_is_object(k) && prev_status(k) >= 0 && prev_status(k) != MD_SEV_UNKNOWN ? k : NULL;
}

void md_health_compare(md_health_result *r, const md_health_state *prev)
{
    for (int i = 0; i < MD_HEALTH_NCHECKS; i++) {
        const md_health_check *c = &r->checks[i];
        json_t *old = prev_check(prev, (md_health_check_id)i);
        int ps = prev_status(old);
        if (!c->ran || old == NULL || ps < 0)
            continue;
        r->compared = 1;
        int64_t last = json_integer_value(json_object_get(old, "time"));
        if (last > r->previous)
            r->previous = last;
        const char *name = md_health_check_name((md_health_check_id)i);
        md_severity to = c->status;
        json_t *known = known_block(old);
        /* against the last run that saw the check (an unknown run in between
         * changed nothing it could see) */
        int64_t since = known ? json_integer_value(json_object_get(known, "time")) : last;
        char when[32], was_when[32];
        md_health_time(since, when, sizeof when);
        size_t n = 0;
        if (i == MD_HEALTH_DNSBL)
            compare_listings(r, old, since, known ? (md_severity)prev_status(known) : (md_severity)ps, to, &n);
        if (to == MD_SEV_UNKNOWN) {
            int64_t was_since = json_integer_value(json_object_get(old, "since"));
            md_health_time(was_since ? was_since : last, was_when, sizeof was_when);
            if (ps != MD_SEV_UNKNOWN)
                add_change(r, (md_health_check_id)i, MD_HEALTH_CHANGE_STATUS, (md_severity)ps, to, last, was_since,
                           "%s: now unknown (%s since %s)", name, md_severity_name((md_severity)ps), was_when);
            continue;
        }
        if (known == NULL)
            continue;   /* never seen before: nothing to compare with */
        md_severity from = (md_severity)prev_status(known);
        int64_t was_since = json_integer_value(json_object_get(known, "since"));
        md_health_time(was_since ? was_since : since, was_when, sizeof was_when);
        if (to == MD_SEV_OK) {
            if (from != MD_SEV_OK)
                add_change(r, (md_health_check_id)i, MD_HEALTH_CHANGE_FIXED, from, to, since, was_since,
                           "%s: fixed (%s since %s)", name, md_severity_name(from), was_when);
            continue;
        }
        /* problems that came, and those known to be gone */
        json_t *old_problems = json_object_get(old, "problems");
        json_t *now = problems(c, NULL);
        size_t k;
        json_t *v;
        json_array_foreach(now, k, v) {
            int seen = 0;
            size_t m;
            json_t *w;
            json_array_foreach(old_problems, m, w)
                seen |= json_equal(v, w);
            if (!seen) {
                md_health_change *ch = add_change(r, (md_health_check_id)i, MD_HEALTH_CHANGE_NEW, from, to, since,
                                                  0, "%s: new %s since %s", name, json_string_value(v), when);
                ch->finding = md_xstrdup(json_string_value(v));
                n++;
            }
        }
        if (!blind(c))
            json_array_foreach(old_problems, k, v) {
                if (!json_is_string(v) || has_problem(c, json_string_value(v)) ||
                    strcmp(json_string_value(v), "dnsbl.listed") == 0)
                    continue;
                md_health_change *ch = add_change(r, (md_health_check_id)i, MD_HEALTH_CHANGE_RESOLVED, from, to,
                                                  since, 0, "%s: %s resolved", name, json_string_value(v));
                ch->finding = md_xstrdup(json_string_value(v));
                n++;
            }
        json_decref(now);
        if (n == 0 && from != to)
            add_change(r, (md_health_check_id)i, MD_HEALTH_CHANGE_STATUS, from, to, since, was_since,
                       "%s: now %s (%s since %s)", name, md_severity_name(to), md_severity_name(from), was_when);
    }
}

/* --- writing ------------------------------------------------------------------------ */

char *md_health_state_text(const md_health_result *r, const md_health_state *prev)
{
    json_t *checks = json_object();
    json_t *old_checks = prev ? json_object_get(prev->root, "checks") : NULL;
    const char *k;
    json_t *v;
    json_object_foreach(old_checks, k, v)
        if (md_health_check_parse(k) >= 0 && json_is_object(v))
            json_object_set(checks, k, v);   /* checks not run now keep their state */
    for (int i = 0; i < MD_HEALTH_NCHECKS; i++) {
        const md_health_check *c = &r->checks[i];
        if (!c->ran)
            continue;
        json_t *old = prev_check(prev, (md_health_check_id)i);
        int ps = prev_status(old);
        int64_t since = ps == (int)c->status ? json_integer_value(json_object_get(old, "since")) : 0;
        json_t *o = json_pack("{s:s,s:I,s:I,s:o}", "status", md_severity_name(c->status), "time",
                              (json_int_t)r->started, "since", (json_int_t)(since ? since : r->started),
                              "problems", problems(c, old));
        if (i == MD_HEALTH_DNSBL)
            json_object_set_new(o, "listings", listings(r, old));
        /* the last known result: what the next run compares with when this
         * one could not see (unknown) */
        json_t *known = known_block(old);
        if (c->status != MD_SEV_UNKNOWN) {
            int64_t ks = known && prev_status(known) == (int)c->status
                       ? json_integer_value(json_object_get(known, "since")) : 0;
            json_object_set_new(o, "known", json_pack("{s:s,s:I,s:I}", "status", md_severity_name(c->status),
                                                      "time", (json_int_t)r->started, "since",
                                                      (json_int_t)(ks ? ks : r->started)));
        } else if (known) {
            json_object_set(o, "known", known);
        }
        json_object_set_new(checks, md_health_check_name((md_health_check_id)i), o);
    }
    json_t *root = json_pack("{s:i,s:I,s:o}", "schema_version", STATE_SCHEMA, "written",
                             (json_int_t)r->started, "checks", checks);
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return text;
}

md_status md_health_state_save(const char *path, const md_health_result *r, const md_health_state *prev,
                               md_error *err)
{
    char *text = md_health_state_text(r, prev);
    if (text == NULL)
        return md_error_set(err, MD_INTERNAL, "health.state", "cannot render the state");
    size_t len = strlen(text);

    /* PATH.tmp.PID: the same folder (a rename is atomic only within one
     * file system), made anew (O_EXCL: never through a planted link). */
    char *tmp = md_xasprintf("%s.tmp.%ld", path, (long)getpid());
    char *dir = md_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, strlen(dir) + 1, ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    md_status st = MD_OK;
    unlink(tmp);   /* a leftover of a killed run with our pid */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        st = md_error_set(err, MD_INTERNAL, "health.state", "cannot create %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (md_write_all(fd, text, len) != 0 || md_write_all(fd, "\n", 1) != 0 || fsync(fd) != 0) {
        st = md_error_set(err, MD_INTERNAL, "health.state", "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto done;
    }
    if (close(fd) != 0) {
        st = md_error_set(err, MD_INTERNAL, "health.state", "cannot write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        st = md_error_set(err, MD_INTERNAL, "health.state", "cannot replace %s: %s", path, strerror(errno));
        unlink(tmp);
        goto done;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);   /* the rename itself survives a crash */
        close(dfd);
    }
done:
    free(text);
    free(tmp);
    free(dir);
    return st;
}
