/* recd — command dispatcher. Each command is a page of argument parsing over
 * the engine library. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

static void usage(FILE *f) {
  fprintf(f,
          "recd %s — a real-time recommendation engine\n"
          "\n"
          "usage: recd <command> [flags]\n"
          "\n"
          "commands:\n"
          "  serve     run the HTTP API on an embedded durable store\n"
          "  gen       write a synthetic shop (items.jsonl, events.csv)\n"
          "  import    bulk-load events (CSV or JSONL) and items into a data dir\n"
          "  export    write a data dir's event log as CSV (the input import reads)\n"
          "  eval      offline evaluation of model configurations on MovieLens data\n"
          "  train     train a model version from a data dir's event log (ials, ease, ranker)\n"
          "  models    list the model registry of a data dir\n"
          "  promote   make a model version production\n"
          "  rollback  make the previous production version production again\n"
          "\n"
          "  recd <command> --help   flags of a command\n"
          "  recd --version          print the version\n",
          RECD_VERSION);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
    printf("recd %s\n", RECD_VERSION);
    return 0;
  }
  if (!strcmp(cmd, "serve")) return cmd_serve(argc - 1, argv + 1);
  if (!strcmp(cmd, "gen")) return cmd_gen(argc - 1, argv + 1);
  if (!strcmp(cmd, "import")) return cmd_import(argc - 1, argv + 1);
  if (!strcmp(cmd, "export")) return cmd_export(argc - 1, argv + 1);
  if (!strcmp(cmd, "eval")) return cmd_eval(argc - 1, argv + 1);
  if (!strcmp(cmd, "train") || !strcmp(cmd, "models") || !strcmp(cmd, "promote") || !strcmp(cmd, "rollback"))
    return cmd_models(argc - 1, argv + 1);
  fprintf(stderr, "recd: unknown command '%s'\n\n", cmd);
  usage(stderr);
  return 2;
}
