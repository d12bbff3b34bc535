/* ranker.c — XGBoost learning-to-rank behind a LIBLINEAR-shaped API.
 *
 * Design:
 *  1. Training builds one DMatrix per set (XGBoost copies the floats), sets
 *     labels and query groups, creates a booster over both (so evaluation
 *     reuses the prediction cache), sets the parameters and calls
 *     XGBoosterUpdateOneIter once per round. The metric is read back from
 *     XGBoosterEvalOneIter's text ("[i]\ttrain-ndcg@10:v\tvalid-ndcg@10:w")
 *     only when someone needs it (a progress callback or early stopping).
 *     Early stopping cuts the model back to the best round with
 *     XGBoosterSlice, so the saved model is the one that was validated.
 *  2. A ranker keeps the XGBoost model bytes (UBJSON) it was built from or
 *     loaded from. ranker_save() is then plain file I/O that never touches
 *     the booster, and so is safe next to concurrent predictions.
 *  3. Before a ranker is handed out its booster is made request-ready: nthread
 *     set to 1 (scoring runs on the calling thread) and one warm-up prediction,
 *     which performs XGBoost's lazy configuration. Learner::Configure() guards
 *     that step with a double-checked, non-atomic flag; after the warm-up
 *     concurrent predictions only read the flag (see ranker.h for the rest of
 *     the thread-safety argument).
 *  4. ranker_load() trusts nothing until the envelope checks out: magic,
 *     version, the lengths that fix the file size, exact size, checksum, then
 *     the header's values and the feature names. Only then do the model bytes
 *     reach XGBoost, whose answer is cross-checked against the header
 *     (feature count, rounds, objective).
 *  5. Scores come from XGBoosterPredictFromDense (in-place prediction: no
 *     DMatrix, the caller's array is described by a JSON array interface),
 *     copied out of XGBoost's per-thread buffer at once.
 */
#include "model/ranker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xgboost/c_api.h>

#include "util/err.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/mem.h"

#define RANKER_MAGIC "RECDRANK"
#define RANKER_VERSION 1u
#define FORMAT_UBJ 1u
#define HDR_SIZE 72
#define MAX_FILE ((uint64_t)1 << 31) /* 2 GiB: far beyond any sane ranker */
#define MAX_ROUNDS 10000

enum { OBJ_NDCG = 0, OBJ_LOGISTIC = 1, OBJ_COUNT };
static const char *const obj_names[OBJ_COUNT] = {"rank:ndcg", "binary:logistic"};

/* in-place prediction config: normal values, all trees, NaN = missing */
static const char PRED_CONFIG[] =
    "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
    "\"strict_shape\": false, \"cache_id\": 0, \"missing\": NaN}";

struct ranker {
  BoosterHandle h;
  ranker_param param; /* objective points into obj_names */
  int obj;
  int rounds;
  size_t nfeatures;
  char **names;
  unsigned char *model; /* XGBoost UBJSON bytes */
  size_t model_len;
};

/* ---- parameters --------------------------------------------------------- */

void ranker_default_param(ranker_param *p) {
  p->objective = obj_names[OBJ_NDCG];
  p->rounds = 200;
  p->max_depth = 6;
  p->eta = 0.1f;
  p->subsample = 0.8f;
  p->threads = 2;
  p->seed = 42;
  p->early_stopping = 0;
}

static int objective_code(const char *s) {
  if (!s) return -1;
  for (int i = 0; i < OBJ_COUNT; i++)
    if (!strcmp(s, obj_names[i])) return i;
  return -1;
}

const char *ranker_check_param(const ranker_param *p) {
  if (!p) return "param is NULL";
  if (objective_code(p->objective) < 0) return "objective must be \"rank:ndcg\" or \"binary:logistic\"";
  if (p->rounds < 1 || p->rounds > MAX_ROUNDS) return "rounds must be in 1..10000";
  if (p->max_depth < 1 || p->max_depth > 16) return "max_depth must be in 1..16";
  if (!(p->eta > 0 && p->eta <= 1)) return "eta must be in (0, 1]";
  if (!(p->subsample > 0 && p->subsample <= 1)) return "subsample must be in (0, 1]";
  if (p->threads < 1 || p->threads > 256) return "threads must be in 1..256";
  if (p->early_stopping < 0 || p->early_stopping > MAX_ROUNDS) return "early_stopping must be in 0..10000";
  return NULL;
}

/* ---- XGBoost glue ------------------------------------------------------- */

/* XGBoost's log lines (warnings at its default verbosity) into ours. XGBoost
 * keeps the callback per registering thread, so train and load renew it. */
static void xgb_log(const char *msg) {
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) n--;
  log_warn("xgboost: %.*s", (int)n, msg);
}

/* XGBoost's last error on this thread, without its "[time] file:line: "
 * prefix and the stack trace that follows the first line */
static const char *xgb_err(void) {
  static _Thread_local char buf[400];
  const char *e = XGBGetLastError();
  if (!e || !*e) return "unknown XGBoost error";
  const char *colon = e[0] == '[' ? strstr(e, ": ") : NULL;
  if (colon) e = colon + 2;
  size_t n = strcspn(e, "\n");
  snprintf(buf, sizeof buf, "%.*s", (int)n, e);
  return buf;
}

static int name_ok(const char *s) {
  size_t n = 0;
  for (; s[n]; n++) {
    char c = s[n];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
          c == ':' || c == '-'))
      return 0;
    if (n >= RANKER_MAX_NAME) return 0;
  }
  return n > 0;
}

/* 0, or -1 with a message naming the bad feature name */
static int check_names(const char *const *names, size_t n, const char *what, char *err, size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    if (!names[i]) {
      snprintf(err, errlen, "%sfeature_names[%zu] is NULL", what, i);
      return -1;
    }
    if (!name_ok(names[i])) {
      snprintf(err, errlen, "%sfeature_names[%zu] \"%.80s\" must be 1..%d bytes of [A-Za-z0-9_.:-]", what, i, names[i],
               RANKER_MAX_NAME);
      return -1;
    }
    for (size_t j = 0; j < i; j++)
      if (!strcmp(names[i], names[j])) {
        snprintf(err, errlen, "%sfeature_names[%zu] repeats \"%s\"", what, i, names[i]);
        return -1;
      }
  }
  return 0;
}

/* 0, or -1 with a message; `what` prefixes the message ("" or "valid: ") */
static int check_problem(const ranker_problem *q, int obj, int need_groups, const char *what, char *err,
                         size_t errlen) {
  if (!q->nrows) {
    snprintf(err, errlen, "%snrows is 0", what);
    return -1;
  }
  if (q->nfeatures < 1 || q->nfeatures > RANKER_MAX_FEATURES) {
    snprintf(err, errlen, "%snfeatures is %zu, must be in 1..%d", what, q->nfeatures, RANKER_MAX_FEATURES);
    return -1;
  }
  if (q->nrows > (SIZE_MAX / sizeof(float)) / q->nfeatures || q->nrows > UINT32_MAX) {
    snprintf(err, errlen, "%snrows is %zu, too large", what, q->nrows);
    return -1;
  }
  if (!q->x || !q->label) {
    snprintf(err, errlen, "%s%s is NULL", what, !q->x ? "x" : "label");
    return -1;
  }
  size_t cells = q->nrows * q->nfeatures;
  for (size_t i = 0; i < cells; i++)
    if (isinf(q->x[i])) {
      snprintf(err, errlen, "%sx[row %zu][feature %zu] is infinite (use NAN for missing)", what, i / q->nfeatures,
               i % q->nfeatures);
      return -1;
    }
  for (size_t i = 0; q->base_margin && i < q->nrows; i++)
    if (!isfinite(q->base_margin[i])) {
      snprintf(err, errlen, "%sbase_margin[%zu] is not finite", what, i);
      return -1;
    }
  float hi = obj == OBJ_NDCG ? RANKER_MAX_LABEL : 1;
  for (size_t i = 0; i < q->nrows; i++)
    if (!(q->label[i] >= 0 && q->label[i] <= hi)) {
      snprintf(err, errlen, "%slabel[%zu] = %g is outside 0..%g for %s", what, i, (double)q->label[i], (double)hi,
               obj_names[obj]);
      return -1;
    }
  if (!q->group_sizes) {
    if (need_groups) {
      snprintf(err, errlen, "%sgroup_sizes is NULL: %s needs query groups", what,
               obj == OBJ_NDCG ? obj_names[obj] : "a grouped training set");
      return -1;
    }
    return 0;
  }
  if (!q->ngroups || q->ngroups > q->nrows) {
    snprintf(err, errlen, "%sngroups is %zu, must be in 1..nrows (%zu)", what, q->ngroups, q->nrows);
    return -1;
  }
  uint64_t sum = 0;
  for (size_t g = 0; g < q->ngroups; g++) {
    if (!q->group_sizes[g]) {
      snprintf(err, errlen, "%sgroup_sizes[%zu] is 0", what, g);
      return -1;
    }
    sum += q->group_sizes[g];
  }
  if (sum != q->nrows) {
    snprintf(err, errlen, "%sgroup_sizes sum to %" PRIu64 " but nrows is %zu", what, sum, q->nrows);
    return -1;
  }
  return 0;
}

static DMatrixHandle make_dmatrix(const ranker_problem *q, const char *const *names, int threads, char *err,
                                  size_t errlen, const char *what) {
  DMatrixHandle d = NULL;
  if (XGDMatrixCreateFromMat_omp(q->x, q->nrows, q->nfeatures, NAN, &d, threads) ||
      XGDMatrixSetFloatInfo(d, "label", q->label, q->nrows) ||
      (q->base_margin && XGDMatrixSetFloatInfo(d, "base_margin", q->base_margin, q->nrows)) ||
      (q->group_sizes && XGDMatrixSetUIntInfo(d, "group", q->group_sizes, q->ngroups)) ||
      XGDMatrixSetStrFeatureInfo(d, "feature_name", (const char **)names, q->nfeatures)) {
    snprintf(err, errlen, "XGBoost could not build the %s matrix: %s", what, xgb_err());
    if (d) XGDMatrixFree(d);
    return NULL;
  }
  return d;
}

/* the value of "\t<set>-<metric>:v" in an eval line, NAN if absent */
static double eval_value(const char *line, const char *set) {
  size_t n = strlen(set);
  for (const char *p = line; (p = strchr(p, '\t')); p++) {
    if (strncmp(p + 1, set, n) || p[1 + n] != '-') continue;
    const char *c = strchr(p + 1, ':');
    if (!c) return NAN;
    char *end;
    double v = strtod(c + 1, &end);
    return end == c + 1 ? NAN : v;
  }
  return NAN;
}

static int set_param(BoosterHandle h, const char *k, const char *v, char *err, size_t errlen) {
  if (!XGBoosterSetParam(h, k, v)) return 0;
  snprintf(err, errlen, "XGBoost refused %s=%s: %s", k, v, xgb_err());
  return -1;
}

/* predict on the calling thread only, and do the lazy configuration now */
static int make_ready(ranker *r, char *err, size_t errlen) {
  if (set_param(r->h, "nthread", "1", err, errlen)) return -1;
  if (XGBoosterSetStrFeatureInfo(r->h, "feature_name", (const char **)r->names, r->nfeatures)) {
    snprintf(err, errlen, "XGBoost refused the feature names: %s", xgb_err());
    return -1;
  }
  float *row = xmalloc(r->nfeatures * sizeof *row), out;
  for (size_t i = 0; i < r->nfeatures; i++) row[i] = NAN;
  int rc = ranker_predict(r, row, 1, &out);
  free(row);
  if (rc) {
    snprintf(err, errlen, "XGBoost cannot predict with the model: %s", xgb_err());
    return -1;
  }
  return 0;
}

static char **copy_names(const char *const *names, size_t n) {
  char **c = xmalloc(n * sizeof *c);
  for (size_t i = 0; i < n; i++) c[i] = xstrdup(names[i]);
  return c;
}

/* ---- training ----------------------------------------------------------- */

ranker *ranker_train(const ranker_problem *prob, const ranker_problem *valid, const ranker_param *p,
                     ranker_progress_fn progress, void *arg, char *err, size_t errlen) {
  char dummy[1];
  if (!errlen) {
    err = dummy;
    errlen = sizeof dummy;
  }
  err[0] = 0;
  if (!prob || !p) {
    snprintf(err, errlen, "%s is NULL", !prob ? "prob" : "param");
    return NULL;
  }
  const char *bad = ranker_check_param(p);
  if (bad) {
    snprintf(err, errlen, "%s", bad);
    return NULL;
  }
  int obj = objective_code(p->objective);
  if (check_problem(prob, obj, obj == OBJ_NDCG, "", err, errlen)) return NULL;
  if (!prob->feature_names) {
    snprintf(err, errlen, "feature_names is NULL: the ranker's features must be named");
    return NULL;
  }
  if (check_names(prob->feature_names, prob->nfeatures, "", err, errlen)) return NULL;
  int grouped = prob->group_sizes != NULL;
  if (valid) {
    if (valid->nfeatures != prob->nfeatures) {
      snprintf(err, errlen, "valid: nfeatures is %zu, the training set has %zu", valid->nfeatures, prob->nfeatures);
      return NULL;
    }
    if (check_problem(valid, obj, grouped, "valid: ", err, errlen)) return NULL;
    if (!grouped && valid->group_sizes) {
      snprintf(err, errlen, "valid: has group_sizes but the training set has none");
      return NULL;
    }
    if (valid->feature_names)
      for (size_t i = 0; i < prob->nfeatures; i++)
        if (!valid->feature_names[i] || strcmp(valid->feature_names[i], prob->feature_names[i])) {
          snprintf(err, errlen, "valid: feature_names[%zu] differs from the training set's \"%s\"", i,
                   prob->feature_names[i]);
          return NULL;
        }
  }

  XGBRegisterLogCallback(xgb_log);
  ranker *r = NULL;
  DMatrixHandle dm[2] = {NULL, NULL};
  BoosterHandle h = NULL;
  const char *set_names[2] = {"train", "valid"};
  int ndm = valid ? 2 : 1;
  if (!(dm[0] = make_dmatrix(prob, prob->feature_names, p->threads, err, errlen, "training"))) goto fail;
  if (valid && !(dm[1] = make_dmatrix(valid, prob->feature_names, p->threads, err, errlen, "validation"))) goto fail;
  if (XGBoosterCreate(dm, (bst_ulong)ndm, &h)) {
    snprintf(err, errlen, "XGBoost could not create a booster: %s", xgb_err());
    h = NULL;
    goto fail;
  }
  char buf[64];
  const char *metric = grouped ? "ndcg@10" : "auc";
  if (set_param(h, "objective", obj_names[obj], err, errlen) || set_param(h, "eval_metric", metric, err, errlen) ||
      set_param(h, "tree_method", "hist", err, errlen) || set_param(h, "booster", "gbtree", err, errlen))
    goto fail;
  snprintf(buf, sizeof buf, "%d", p->max_depth);
  if (set_param(h, "max_depth", buf, err, errlen)) goto fail;
  snprintf(buf, sizeof buf, "%.9g", (double)p->eta);
  if (set_param(h, "eta", buf, err, errlen)) goto fail;
  snprintf(buf, sizeof buf, "%.9g", (double)p->subsample);
  if (set_param(h, "subsample", buf, err, errlen)) goto fail;
  snprintf(buf, sizeof buf, "%d", p->threads);
  if (set_param(h, "nthread", buf, err, errlen)) goto fail;
  /* XGBoost's seed is an int: fold the 64 bits into 31 */
  snprintf(buf, sizeof buf, "%" PRIu64, (p->seed ^ (p->seed >> 31) ^ (p->seed >> 62)) & 0x7fffffff);
  if (set_param(h, "seed", buf, err, errlen)) goto fail;

  int stop_early = valid && p->early_stopping > 0;
  double best = -INFINITY;
  int best_round = 0, done = 0;
  for (int it = 0; it < p->rounds; it++) {
    if (XGBoosterUpdateOneIter(h, it, dm[0])) {
      snprintf(err, errlen, "XGBoost failed in round %d: %s", it + 1, xgb_err());
      goto fail;
    }
    done = it + 1;
    if (!progress && !stop_early) continue;
    /* the training set only when someone reads it */
    DMatrixHandle *evm = progress ? dm : dm + 1;
    const char **evn = progress ? set_names : set_names + 1;
    bst_ulong nev = progress ? (bst_ulong)ndm : 1;
    const char *line = NULL;
    if (XGBoosterEvalOneIter(h, it, evm, evn, nev, &line)) {
      snprintf(err, errlen, "XGBoost could not evaluate round %d: %s", it + 1, xgb_err());
      goto fail;
    }
    double tv = progress ? eval_value(line, "train") : NAN;
    double vv = valid ? eval_value(line, "valid") : NAN;
    if (progress) progress(arg, it + 1, tv, vv);
    /* a NaN metric (a degenerate validation set) neither improves nor counts */
    if (stop_early && !isnan(vv)) {
      if (vv > best) {
        best = vv;
        best_round = it;
      } else if (it - best_round >= p->early_stopping) {
        break;
      }
    }
  }
  if (stop_early && best > -INFINITY && best_round + 1 < done) {
    BoosterHandle cut = NULL;
    if (XGBoosterSlice(h, 0, best_round + 1, 1, &cut)) {
      snprintf(err, errlen, "XGBoost could not cut the model to round %d: %s", best_round + 1, xgb_err());
      goto fail;
    }
    XGBoosterFree(h);
    h = cut;
    done = best_round + 1;
  }

  r = xcalloc(1, sizeof *r);
  r->h = h;
  h = NULL;
  r->param = *p;
  r->param.objective = obj_names[obj];
  r->obj = obj;
  r->rounds = done;
  r->nfeatures = prob->nfeatures;
  r->names = copy_names(prob->feature_names, prob->nfeatures);
  if (make_ready(r, err, errlen)) goto fail;
  bst_ulong len = 0;
  const char *bytes = NULL;
  if (XGBoosterSaveModelToBuffer(r->h, "{\"format\": \"ubj\"}", &len, &bytes)) {
    snprintf(err, errlen, "XGBoost could not serialise the model: %s", xgb_err());
    goto fail;
  }
  r->model = xmalloc(len);
  memcpy(r->model, bytes, len);
  r->model_len = len;
  for (int i = 0; i < ndm; i++) XGDMatrixFree(dm[i]);
  return r;
fail:
  if (h) XGBoosterFree(h);
  for (int i = 0; i < 2; i++)
    if (dm[i]) XGDMatrixFree(dm[i]);
  ranker_free(r);
  return NULL;
}

void ranker_free(ranker *r) {
  if (!r) return;
  if (r->h) XGBoosterFree(r->h);
  for (size_t i = 0; r->names && i < r->nfeatures; i++) free(r->names[i]);
  free(r->names);
  free(r->model);
  free(r);
}

size_t ranker_nfeatures(const ranker *r) { return r->nfeatures; }
const char *ranker_feature_name(const ranker *r, size_t i) { return i < r->nfeatures ? r->names[i] : NULL; }
int ranker_rounds(const ranker *r) { return r->rounds; }
const ranker_param *ranker_params(const ranker *r) { return &r->param; }

int ranker_feature_index(const ranker *r, const char *name) {
  for (size_t i = 0; name && i < r->nfeatures; i++)
    if (!strcmp(r->names[i], name)) return (int)i;
  return -1;
}

/* ---- prediction --------------------------------------------------------- */

int ranker_predict(const ranker *r, const float *x, size_t n, float *out) {
  if (!r) return RECD_EINVAL;
  if (!n) return 0;
  if (!x || !out || n > (SIZE_MAX / sizeof(float)) / r->nfeatures) return RECD_EINVAL;
  size_t cells = n * r->nfeatures;
  for (size_t i = 0; i < cells; i++)
    if (isinf(x[i])) return RECD_EINVAL;
  /* numpy's __array_interface__, version 3: address, read-only, shape, f32 */
  char iface[192];
  snprintf(iface, sizeof iface,
           "{\"data\": [%" PRIuPTR ", true], \"shape\": [%zu, %zu], \"typestr\": \"<f4\", \"version\": 3}",
           (uintptr_t)x, n, r->nfeatures);
  const bst_ulong *shape = NULL;
  bst_ulong dim = 0;
  const float *res = NULL;
  if (XGBoosterPredictFromDense(r->h, iface, PRED_CONFIG, NULL, &shape, &dim, &res)) {
    log_error("ranker: XGBoost prediction failed: %s", xgb_err());
    return RECD_EIO;
  }
  bst_ulong total = 1;
  for (bst_ulong d = 0; d < dim; d++) total *= shape[d];
  if (!dim || shape[0] != n || total != n) {
    log_error("ranker: XGBoost returned %" PRIu64 " scores for %zu rows", (uint64_t)total, n);
    return RECD_EIO;
  }
  memcpy(out, res, n * sizeof *out);
  return 0;
}

/* ---- save / load -------------------------------------------------------- */

/* the checksum after the first n bytes of a file: util/fileio's, seeded */
uint64_t ranker__checksum(const void *data, size_t n) { return fileio_hash(0x52414e4bULL, data, n); }

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static uint64_t get64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* header layout (HDR_SIZE bytes): see ranker.h */
static void put_header(unsigned char h[HDR_SIZE], uint32_t obj, uint32_t nfeat, uint32_t rounds,
                       const ranker_param *p, uint64_t model_len) {
  memset(h, 0, HDR_SIZE);
  memcpy(h, RANKER_MAGIC, 8);
  put32(h + 8, RANKER_VERSION);
  put32(h + 12, obj);
  put32(h + 16, FORMAT_UBJ);
  put32(h + 20, nfeat);
  put32(h + 24, rounds);
  put32(h + 28, (uint32_t)p->rounds);
  put32(h + 32, (uint32_t)p->max_depth);
  memcpy(h + 36, &p->eta, 4);
  memcpy(h + 40, &p->subsample, 4);
  put32(h + 44, (uint32_t)p->threads);
  put32(h + 48, (uint32_t)p->early_stopping);
  /* 52..55 zero */
  put64(h + 56, p->seed);
  put64(h + 64, model_len);
}

/* The whole file image: header, names, model bytes, checksum. Separate from
 * ranker_save() so tests can write envelopes around other bytes. */
static unsigned char *envelope(uint32_t obj, const ranker_param *p, uint32_t rounds, char *const *names,
                               size_t nfeat, const unsigned char *model, size_t model_len, size_t *out_len) {
  size_t n = HDR_SIZE + model_len + 8;
  for (size_t i = 0; i < nfeat; i++) n += 2 + strlen(names[i]);
  unsigned char *b = xmalloc(n), *q = b + HDR_SIZE;
  put_header(b, obj, (uint32_t)nfeat, rounds, p, model_len);
  for (size_t i = 0; i < nfeat; i++) {
    uint16_t l = (uint16_t)strlen(names[i]);
    memcpy(q, &l, 2);
    memcpy(q + 2, names[i], l);
    q += 2 + l;
  }
  memcpy(q, model, model_len);
  q += model_len;
  put64(q, ranker__checksum(b, (size_t)(q - b)));
  *out_len = n;
  return b;
}

int ranker_save(const ranker *r, const char *path) {
  if (!r || !path) return RECD_EINVAL;
  size_t n;
  unsigned char *b = envelope((uint32_t)r->obj, &r->param, (uint32_t)r->rounds, r->names, r->nfeatures, r->model,
                              r->model_len, &n);
  char *tmp;
  int fd = fileio_create_tmp(path, &tmp);
  if (fd < 0) {
    free(b);
    return fd;
  }
  int rc = fileio_commit(fd, tmp, path, fileio_write_all(fd, b, n));
  free(b);
  return rc;
}

/* Check an envelope image and build the ranker from it. `path` is only for
 * messages. Takes nothing over: b stays the caller's. */
static ranker *from_envelope(const unsigned char *b, size_t size, const char *path, char *err, size_t errlen) {
  if (fileio_check_envelope(b, size, HDR_SIZE, RANKER_MAGIC, RANKER_VERSION, "ranker model", path, err, errlen))
    return NULL;
  /* the lengths that fix the size first: a short or long file is named as such */
  uint32_t nfeat = get32(b + 20);
  uint64_t model_len = get64(b + 64);
  if (nfeat < 1 || nfeat > RANKER_MAX_FEATURES) {
    snprintf(err, errlen, "%s has a bad header: %u features (must be 1..%d)", path, nfeat, RANKER_MAX_FEATURES);
    return NULL;
  }
  size_t off = HDR_SIZE;
  for (uint32_t i = 0; i < nfeat; i++) {
    if (off + 2 > size - 8) {
      snprintf(err, errlen, "%s is truncated or corrupt: %zu bytes end inside the feature names", path, size);
      return NULL;
    }
    uint16_t l;
    memcpy(&l, b + off, 2);
    off += 2 + (size_t)l;
  }
  if (model_len > MAX_FILE || (uint64_t)off + model_len + 8 != size) {
    uint64_t want = (uint64_t)off + model_len + 8;
    if (model_len > MAX_FILE || want > size)
      snprintf(err, errlen, "%s is truncated or corrupt: %zu bytes, its header needs %" PRIu64, path, size, want);
    else
      snprintf(err, errlen, "%s is corrupt or has trailing bytes: %zu bytes, its header needs %" PRIu64, path, size,
               want);
    return NULL;
  }
  if (ranker__checksum(b, size - 8) != get64(b + size - 8)) {
    snprintf(err, errlen, "%s fails its checksum (corrupt or partly written)", path);
    return NULL;
  }
  /* intact; now the values */
  uint32_t obj = get32(b + 12), format = get32(b + 16), rounds = get32(b + 24);
  if (obj >= OBJ_COUNT) {
    snprintf(err, errlen, "%s has a bad header: unknown objective %u", path, obj);
    return NULL;
  }
  if (format != FORMAT_UBJ) {
    snprintf(err, errlen, "%s has a bad header: unknown model format %u", path, format);
    return NULL;
  }
  ranker_param p;
  p.objective = obj_names[obj];
  p.rounds = (int)get32(b + 28);
  p.max_depth = (int)get32(b + 32);
  memcpy(&p.eta, b + 36, 4);
  memcpy(&p.subsample, b + 40, 4);
  p.threads = (int)get32(b + 44);
  p.early_stopping = (int)get32(b + 48);
  p.seed = get64(b + 56);
  const char *bad = ranker_check_param(&p);
  if (!bad && (rounds < 1 || rounds > (uint32_t)p.rounds)) bad = "trees kept must be in 1..rounds";
  if (!bad && get32(b + 52)) bad = "reserved field is not zero";
  if (!bad && !model_len) bad = "no model bytes";
  if (bad) {
    snprintf(err, errlen, "%s has a bad header: %s", path, bad);
    return NULL;
  }
  ranker *r = xcalloc(1, sizeof *r);
  r->param = p;
  r->obj = (int)obj;
  r->rounds = (int)rounds;
  r->nfeatures = nfeat;
  r->names = xcalloc(nfeat, sizeof *r->names);
  off = HDR_SIZE;
  for (uint32_t i = 0; i < nfeat; i++) {
    uint16_t l;
    memcpy(&l, b + off, 2);
    r->names[i] = xstrndup((const char *)b + off + 2, l);
    off += 2 + (size_t)l;
    if (strlen(r->names[i]) != l) { /* a NUL inside */
      snprintf(err, errlen, "%s has a bad feature name %u", path, i);
      goto fail;
    }
  }
  char what[300];
  snprintf(what, sizeof what, "%.250s: ", path);
  if (check_names((const char *const *)r->names, nfeat, what, err, errlen)) goto fail;
  r->model = xmalloc(model_len);
  memcpy(r->model, b + off, model_len);
  r->model_len = model_len;

  /* only now does XGBoost see the bytes */
  XGBRegisterLogCallback(xgb_log);
  if (XGBoosterCreate(NULL, 0, &r->h)) {
    r->h = NULL;
    snprintf(err, errlen, "XGBoost could not create a booster: %s", xgb_err());
    goto fail;
  }
  if (XGBoosterLoadModelFromBuffer(r->h, r->model, model_len)) {
    snprintf(err, errlen, "XGBoost refused the model in %s: %s", path, xgb_err());
    goto fail;
  }
  bst_ulong xf = 0;
  int xr = -1;
  if (XGBoosterGetNumFeature(r->h, &xf) || XGBoosterBoostedRounds(r->h, &xr)) {
    snprintf(err, errlen, "XGBoost cannot describe the model in %s: %s", path, xgb_err());
    goto fail;
  }
  if (xf != nfeat || xr != (int)rounds) {
    snprintf(err, errlen, "%s: XGBoost model has %" PRIu64 " features and %d rounds, the header says %u and %u", path,
             (uint64_t)xf, xr, nfeat, rounds);
    goto fail;
  }
  bst_ulong clen = 0;
  const char *conf = NULL;
  char quoted[40];
  snprintf(quoted, sizeof quoted, "\"%s\"", obj_names[obj]);
  if (XGBoosterSaveJsonConfig(r->h, &clen, &conf) || !conf || !strstr(conf, quoted)) {
    snprintf(err, errlen, "%s: the XGBoost model's objective is not %s", path, obj_names[obj]);
    goto fail;
  }
  if (make_ready(r, err, errlen)) goto fail;
  return r;
fail:
  ranker_free(r);
  return NULL;
}

ranker *ranker_load(const char *path, char *err, size_t errlen) {
  char dummy[1];
  if (!errlen) {
    err = dummy;
    errlen = sizeof dummy;
  }
  err[0] = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st)) {
    snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
    close(fd);
    return NULL;
  }
  if ((uint64_t)st.st_size > MAX_FILE) {
    snprintf(err, errlen, "%s is too large (%lld bytes) to be a ranker model", path, (long long)st.st_size);
    close(fd);
    return NULL;
  }
  size_t size = (size_t)st.st_size;
  unsigned char *b = xmalloc(size);
  int rc = fileio_read_all(fd, b, size);
  close(fd);
  if (rc) {
    snprintf(err, errlen, "cannot read %s: %s", path,
             rc == RECD_ECORRUPT ? "file shrank while reading" : recd_strerror(rc));
    free(b);
    return NULL;
  }
  ranker *r = from_envelope(b, size, path, err, errlen);
  free(b);
  return r;
}
