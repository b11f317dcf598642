/*
 * A DNS answer table in memory, written as text, for tests and fuzz targets
 * that run lib/spf or lib/auth without a DNS server.  One answer a line:
 *
 *   NAME TYPE DATA
 *
 * TYPE is TXT, A, AAAA, MX or PTR (any case).  DATA is an outcome word
 * (nxdomain, nodata, servfail, refused, timeout, badresp, error), or one
 * record: for TXT the rest of the line as it is, for A and AAAA an address,
 * for MX "PREFERENCE HOST", for PTR a name.  Lines for the same NAME and
 * TYPE add records.  Names are compared without case and trailing dot; a
 * name and type that no line gives is NXDOMAIN.  Lines that are none of
 * this are skipped, so any bytes make a table.
 */
#ifndef MD_TEST_ANSWER_TABLE_H
#define MD_TEST_ANSWER_TABLE_H

#include <stddef.h>
#include "dns/dns.h"

typedef struct answer_table answer_table;

#define ANSWER_TABLE_MAX 256      /* answers kept; more lines are skipped */
#define ANSWER_TABLE_RECORDS 64   /* records kept per answer */

/* Parses text[0..len).  Never NULL; free with answer_table_free(). */
answer_table *answer_table_parse(const char *text, size_t len);
void answer_table_free(answer_table *t);

/* The answer for (name, type) as a new md_dns_answer (caller frees with
 * md_dns_answer_free()); arg is the table.  The signature of spf_source
 * and md_auth_answers.  Counts the questions asked. */
md_dns_answer *answer_table_resolve(void *arg, const char *name, int type);
size_t answer_table_asked(const answer_table *t);

#endif
