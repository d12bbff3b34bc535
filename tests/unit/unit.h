/* unit.h — shared declarations for the Check-based unit test runner.
 * Each tests/unit/<layer>/<noun>_test.c defines one suite constructor. */
#ifndef RECD_TESTS_UNIT_H
#define RECD_TESTS_UNIT_H

#include <check.h>

/* a fresh empty temp directory (caller frees the string and may rm -rf it) */
char *unit_tmpdir(void);
void unit_rmrf(const char *path);

Suite *err_suite(void);
Suite *clock_suite(void);
Suite *strmap_suite(void);
Suite *u32map_suite(void);
Suite *fileio_suite(void);
Suite *config_suite(void);
Suite *store_suite(void);
Suite *evblock_suite(void);
Suite *userprof_suite(void);
Suite *itemstats_suite(void);
Suite *covis_suite(void);
Suite *content_suite(void);
Suite *popularity_suite(void);
Suite *ials_suite(void);
Suite *ease_suite(void);
Suite *ranker_suite(void);
Suite *engine_suite(void);
Suite *rankdata_suite(void);
Suite *eventparse_suite(void);
Suite *route_suite(void);
Suite *request_suite(void);
Suite *jsonout_suite(void);
Suite *gen_suite(void);
Suite *import_suite(void);
Suite *metrics_suite(void);
Suite *quality_suite(void);

#endif
