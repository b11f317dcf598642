/* tools/usermail: the mailer of maildiag-notify, from the configuration. */
#include "config.h"
#include "usermail.h"

#include <string.h>

int usermail_open(ucli *u, usermail *um)
{
    memset(um, 0, sizeof *um);
    if (cli_send_settle(u->prog, u->conf, &um->send, CLI_SEND_ACCOUNT) != 0)
        return -1;
    if (um->send.m.route.server == NULL) {   /* straight to the recipient's MX hosts */
        if (u->resolver == NULL && (u->resolver = cli_dns_open(&u->dns, u->prog, 0)) == NULL)
            return -1;
        um->send.m.route.dns = u->resolver;
    }
    return cli_send_open(u->prog, &um->send, CLI_SEND_KEYS);
}

void usermail_clear(usermail *um)
{
    cli_send_clear(&um->send);
}
