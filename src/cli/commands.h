/* commands.h — the `recd` subcommands; each is a thin main over the engine. */
#ifndef RECD_CLI_COMMANDS_H
#define RECD_CLI_COMMANDS_H

int cmd_serve(int argc, char **argv);   /* serve.c */
int cmd_gen(int argc, char **argv);     /* gen.c */
int cmd_import(int argc, char **argv);  /* import.c */
int cmd_export(int argc, char **argv);  /* export.c */
int cmd_eval(int argc, char **argv);    /* eval.c */
int cmd_models(int argc, char **argv);  /* models.c: train, models, promote, rollback */

#endif
