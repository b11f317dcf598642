/* tools/cli-address: one answer to a bad address in every tool (cli.h). */
#include "config.h"
#include "cli.h"

#include <string.h>

#define SHOWN_MAX 200   /* octets of the text quoted back */

/* "[WHAT ]'TEXT': not a valid email address: REASON", TEXT cut at SHOWN_MAX. */
static void address_message(char *out, size_t size, const char *what, const char *text, const md_error *err)
{
    size_t n = text ? strlen(text) : 0;
    snprintf(out, size, "%s%s'%.*s%s': not a valid email address: %s", what ? what : "", what ? " " : "",
             (int)(n > SHOWN_MAX ? SHOWN_MAX : n), text ? text : "", n > SHOWN_MAX ? "..." : "", err->text);
}

void cli_address_error(const char *prog, const char *what, const char *text, const md_error *err)
{
    char msg[SHOWN_MAX + MD_ERROR_TEXT_MAX + 100];
    address_message(msg, sizeof msg, what, text, err);
    cli_error(prog, "%s", msg);
}

int cli_address(const char *prog, const char *what, const char *text, unsigned opts, md_address *a)
{
    md_error err = { 0 };
    if (md_address_parse_len(text, text ? strlen(text) : 0, opts, a, &err) == MD_OK)
        return 0;
    char msg[SHOWN_MAX + MD_ERROR_TEXT_MAX + 100];
    address_message(msg, sizeof msg, what, text, &err);
    cli_fail(prog, "input.invalid", "%s", msg);   /* the run's end: its one JSON value too */
    return -1;
}

void cli_address_notes(const char *prog, const char *what, const md_address *a, unsigned mask)
{
    for (unsigned bit = 1; bit && bit <= mask; bit <<= 1)
        if ((a->flags & mask & bit) && md_address_flag_note(bit))
            cli_error(prog, "note: %s%s'%s': %s", what ? what : "", what ? " " : "", a->mailbox,
                      md_address_flag_note(bit));
}

void cli_address_findings(md_report *rep, const md_address *a)
{
    if (a->flags & MD_ADDRESS_CHANGED)
        md_report_add(rep, "address.trimmed", MD_SEV_DEFAULT, "%s: read as %s",
                      md_address_flag_note(a->flags & MD_ADDRESS_TRIMMED ? MD_ADDRESS_TRIMMED
                                                                          : MD_ADDRESS_BRACKETS),
                      a->mailbox);
    for (unsigned bit = 1; bit && bit <= MD_ADDRESS_UNUSUAL; bit <<= 1)
        if ((a->flags & MD_ADDRESS_UNUSUAL & bit) && md_address_flag_note(bit))
            md_report_add(rep, "address.unusual", MD_SEV_DEFAULT, "%s", md_address_flag_note(bit));
}
