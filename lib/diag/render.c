/* lib/diag render: a diagnosis as the JSON contract and as text for a
 * person (see diag.h). */
#include "config.h"
#include "diag.h"

#include <string.h>

/* What to do next, by finding id: the support engineer's next step, in
 * words that name no tool or option (a caller's md_diag_options.advice
 * words those). */
static const struct { const char *id; const char *advice; } advice[] = {
    { "address.invalid", "ask the user for the address exactly as they typed it at sign-up" },
    { "address.typo", "ask the user whether they meant the suggested address; correct it on the account" },
    { "address.suppressed", "fix the cause (the bounce text says it), then remove the suppression" },
    { "address.last_send_failed", "read the reply of the last send; send the email again to try" },
    { "account.none", "search by username or by other addresses of the user" },
    { "account.sso", "tell the user to sign in through their identity provider: no password to reset" },
    { "account.deactivated", "reactivate the account if the user should have access" },
    { "account.locked", "unlock the account after checking who asks; then the reset email is sent" },
    { "account.unverified", "send a fresh verification link" },
    { "account.pending_change", "ask the user to confirm the new address, or cancel the change" },
    { "account.also_matches", "check whether the user signed up with the other spelling" },
    { "store.error", "check the store ([store] uri) and rerun" },
    { "mx.null", "the domain takes no mail: the user needs another address" },
    { "mx.none", "the domain has no mail route: the user needs another address, or its owner must publish MX" },
    { "mx.null_mixed", "the domain's owner must remove the null MX or the other MX records" },
    { "domain.nxdomain", "the domain does not exist: check the spelling with the user" },
    { "dns.temporary", "rerun later; if it persists, check the resolver and the domain's name servers" },
    { "mx.target_internal", "set [mail] allow_internal = yes only for a lab; otherwise the domain's MX is wrong" },
    { "smtp.rcpt.rejected", "the receiving server refuses the mailbox: confirm the address with the user" },
    { "recipient.blocked", "get our IP off the named blocklist (see the sender layer), or send through another IP" },
    { "smtp.rcpt.deferred", "nothing to do: the receiver asks for a retry; our mail server retries" },
    { "smtp.greylisted", "nothing to do: the email arrives after the retry, usually within minutes" },
    { "smtp.connect.failed", "the recipient's servers are unreachable from here: check again later" },
    { "smtp.timeout", "the recipient's server did not answer in time: check again later" },
    { "tls.cert_unverified", "the receiver's certificate does not verify: mail still goes, over unverified TLS" },
    { "spf.fail", "add our sending IP to the SPF record of our MAIL FROM domain" },
    { "spf.softfail", "add our sending IP to the SPF record of our MAIL FROM domain" },
    { "spf.none", "publish an SPF record for our MAIL FROM domain" },
    { "spf.permerror", "fix our SPF record (an SPF check shows where it breaks)" },
    { "dkim.missing", "publish the DKIM key for the selector, or stop signing with it" },
    { "dkim.key_weak", "rotate to a 2048-bit RSA DKIM key" },
    { "dkim.key_short", "rotate to a 2048-bit RSA DKIM key" },
    { "dmarc.missing", "publish a DMARC record for our From domain" },
    { "dmarc.p_none", "move our DMARC policy to quarantine or reject once reports look clean" },
    { "dnsbl.listed", "request delisting from the list (its TXT reason names the page) after fixing the cause" },
    { "dnsbl.unusable", "check the list's name and that it answers our resolver ([dnsbl] zones)" },
    { "rdns.missing", "ask the IP's provider to set a PTR record naming our HELO host" },
    { "rdns.mismatch", "make the PTR name resolve back to the IP" },
    { "helo.mismatch", "set [sender] helo (and the MTA's) to the IP's forward-confirmed name" },
    { "dmarc.unaligned", "send with a MAIL FROM (and DKIM d=) in our From domain's organizational domain" },
    { "dmarc.partly_aligned", "align the other mechanism too, so DMARC does not rest on one" },
    { "relay.cert_expiring", "renew the relay's certificate (and check that its renewal job runs)" },
    { "tls.cert_expired", "renew the server's certificate now" },
    { "smtp.auth.failed", "check [mail] user and its password file against the relay's accounts" },
    { "delivery.not_found", "look at the relay's log for the queue id, then at the seed mailbox's server" },
    { "diag.timeout", "rerun with a longer deadline" },
    { "diag.skipped", "fix the earlier layer first" },
};

const char *md_diag_advice(const char *id)
{
    for (size_t i = 0; id && i < sizeof advice / sizeof advice[0]; i++)
        if (strcmp(advice[i].id, id) == 0)
            return advice[i].advice;
    return NULL;
}

/* The caller's next step for a finding, else ours. */
static const char *next_step(const md_diag_result *r, const char *id)
{
    const char *a = r->advice && id ? r->advice(id) : NULL;
    return a ? a : md_diag_advice(id);
}

static json_t *layer_json(const md_diag_result *r, md_diag_layer_id id, const md_diag_layer *l)
{
    json_t *o = json_object();
    json_object_set_new(o, "layer", json_string(md_diag_layer_name(id)));
    json_object_set_new(o, "status", json_string(md_severity_name(l->status)));
    json_t *rep = md_report_to_json(l->report);
    json_t *findings = json_incref(json_object_get(rep, "findings"));
    size_t i;
    json_t *f;
    json_array_foreach(findings, i, f) {
        const char *a = next_step(r, json_string_value(json_object_get(f, "id")));
        const char *sev = json_string_value(json_object_get(f, "severity"));
        if (a && sev && strcmp(sev, "ok") != 0)
            json_object_set_new(f, "advice", json_string(a));
    }
    json_object_set_new(o, "findings", findings ? findings : json_array());
    json_object_set(o, "data", md_report_fields(l->report));
    json_decref(rep);
    return o;
}

json_t *md_diag_result_json(const md_diag_result *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "schema_version", json_integer(1));
    json_t *addr = json_string(r->input);
    if (addr == NULL) {   /* not UTF-8: shown sanitized */
        char *s = md_sanitize_dup(r->input, strlen(r->input));
        addr = json_string(s);
        free(s);
    }
    json_object_set_new(o, "address", addr);
    json_object_set_new(o, "email", json_string(md_diag_email_name(r->email)));
    json_object_set_new(o, "status", json_string(md_severity_name(r->status)));
    if (r->verdict.set)
        json_object_set_new(o, "verdict", json_pack("{s:s,s:s,s:s,s:s}", "layer",
                                                    md_diag_layer_name(r->verdict.layer), "id",
                                                    r->verdict.id, "severity",
                                                    md_severity_name(r->verdict.severity),
                                                    "summary", r->verdict.summary));
    else
        json_object_set_new(o, "verdict", json_null());
    json_t *layers = json_array();
    for (int i = 0; i < MD_DIAG_NLAYERS; i++)
        if (r->layers[i].ran)
            json_array_append_new(layers, layer_json(r, (md_diag_layer_id)i, &r->layers[i]));
    json_object_set_new(o, "layers", layers);
    json_object_set_new(o, "elapsed_ms", json_integer(r->elapsed_ms));
    return o;
}

/* --- text ----------------------------------------------------------------------- */

int md_diag_write_text(const md_diag_result *r, FILE *out, unsigned flags)
{
    const char *reset = flags & MD_TEXT_COLOR ? "\033[0m" : "";
    if (r->verdict.set) {
        fputs(md_severity_color(r->verdict.severity, flags), out);
        md_text_line(out, "%s", r->verdict.summary);
        fputs(reset, out);
    } else {
        fputs(md_severity_color(MD_SEV_OK, flags), out);
        md_text_line(out, "Nothing found that stops %s email to %s: every layer checked is ok.",
             r->email == MD_DIAG_EMAIL_ANY ? "the product's" :
             r->email == MD_DIAG_EMAIL_RESET ? "the password-reset" :
             r->email == MD_DIAG_EMAIL_VERIFY ? "the verification" : "the username-reminder",
             r->input);
        fputs(reset, out);
    }
    fputc('\n', out);
    for (int i = 0; i < MD_DIAG_NLAYERS; i++) {
        const md_diag_layer *l = &r->layers[i];
        if (!l->ran)
            continue;
        const char *first = "";
        for (size_t k = 0; k < md_report_count(l->report); k++)
            if (md_report_get(l->report, k)->severity == l->status && l->status != MD_SEV_OK) {
                first = md_report_get(l->report, k)->id;
                break;
            }
        fprintf(out, "  %-10s %s%-8s%s %s%s\n", md_diag_layer_name((md_diag_layer_id)i),
                md_severity_color(l->status, flags), md_severity_label(l->status), reset, first,
                r->verdict.set && r->verdict.layer == (md_diag_layer_id)i ? "   <- first broken layer" : "");
    }
    for (int i = 0; i < MD_DIAG_NLAYERS; i++) {
        const md_diag_layer *l = &r->layers[i];
        int header = 0;
        for (size_t k = 0; l->ran && k < md_report_count(l->report); k++) {
            const md_finding *f = md_report_get(l->report, k);
            if (f->severity == MD_SEV_OK && !(flags & MD_DIAG_TEXT_ALL))
                continue;
            if (!header++)
                fprintf(out, "\n%s:\n", md_diag_layer_name((md_diag_layer_id)i));
            fprintf(out, "  %s%s%s ", md_severity_color(f->severity, flags), md_severity_label(f->severity), reset);
            md_text_line(out, "%s: %s", f->id, f->summary);
            for (size_t e = 0; (flags & MD_TEXT_EVIDENCE) && e < f->nevidence; e++)
                md_text_line(out, "      %s", f->evidence[e]);
            const char *a = next_step(r, f->id);
            if (a && f->severity != MD_SEV_OK)
                md_text_line(out, "      next: %s", a);
        }
    }
    fprintf(out, "\n(%lld ms)\n", (long long)r->elapsed_ms);
    return ferror(out) ? -1 : 0;
}
