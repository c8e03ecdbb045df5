/* Progress display for long operations (deploy, destroy), on the terminal's
 * stream (stderr).
 *
 * An operation is a set of steps, each named by a key (a graph node name such
 * as "vpc" or "subnet_a": short, no spaces or colons). A step starts, may get a
 * detail (the resource id as it appears, "vpc-0abc"), and ends once: done,
 * failed or skipped. Several steps may run at once and every function may be
 * called from any thread.
 *
 * Three modes, chosen at creation:
 *
 * - TTY (term->tty): the running steps form a live block that is redrawn in
 *   place (ANSI cursor movement) on every event and every 100 ms by a ticker
 *   thread that turns the spinner and the elapsed times. A step that ends is
 *   printed once above the block ("✓ label  detail  0.8s", red "✗" for a
 *   failure, dim "-" for a skip) and scrolls away with the terminal. The cursor
 *   is hidden while the display is live and shown again by gm_progress_free.
 *   Colour only when term->color. The block is cut to the terminal's height
 *   ("… and N more") and each live line to its width, so nothing wraps.
 *
 * - Plain (not a TTY): one line per event, no ANSI codes, flushed at once:
 *
 *     [  0.0s] begin  Deploying "demo"            (only with a title)
 *     [  0.4s] start  vpc: creating VPC            (": label" when given)
 *     [  0.9s] detail vpc: vpc-0abc
 *     [  1.2s] done   vpc: vpc-0abc (0.8s)         (": detail" when known)
 *     [  3.0s] FAILED instance: <message>
 *     [  3.0s] skip   alb: tier dev has no ALB     (": reason" when given)
 *     [  3.1s] note: attempt 2: ...
 *     [  4.0s] halted efs (3.6s)                   (still running at free)
 *     [  4.0s] end    5 done, 1 failed, 1 skipped, 1 halted (4.0s)
 *
 *   The bracket holds the time since gm_progress_new, "%5.1f" seconds; the
 *   keyword is padded to six columns plus a space ("note:" excepted). Step
 *   durations use gm_progress_format_elapsed. The "end" line is printed by
 *   gm_progress_free when there was a title or at least one step.
 *
 * - Quiet (enabled false, e.g. --output json, or term NULL): prints nothing at
 *   all, ever.
 *
 * Text handed in (labels, details, messages, notes) is copied; control
 * characters (newlines, ESC, ...) become spaces so one event is always one
 * line and outside text cannot drive the terminal. Each text is cut to
 * GM_PROGRESS_TEXT_MAX bytes (at a UTF-8 boundary).
 *
 * Nothing else should write to the stream while a TTY display is live: it
 * would be overwritten by the next redraw. Use gm_progress_note instead.
 */
#ifndef GM_UI_PROGRESS_H
#define GM_UI_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ui/term.h"

#define GM_PROGRESS_TEXT_MAX 1024

typedef struct gm_progress gm_progress;

/* Creates a display writing to term->out. term is read at creation only (the
 * caller may release it afterwards); NULL or enabled == false gives a quiet
 * display. title (may be NULL) is printed first. In TTY mode this hides the
 * cursor and starts the ticker thread (if the thread cannot be created the
 * display still redraws on every event). Returns NULL only when memory is
 * exhausted; every function below accepts NULL and then does nothing. */
gm_progress *gm_progress_new(const gm_term *term, bool enabled, const char *title);

/* Starts the step key with label (may be NULL: the key is shown; for a known
 * step NULL keeps its label). Starting a running step only replaces its label;
 * starting an ended step runs it again (a retry) with a fresh clock and no
 * detail. */
void gm_progress_start(gm_progress *p, const char *key, const char *label);

/* Sets the detail shown next to a running step (NULL clears it). An unknown key
 * starts a new step. On an ended step it only replaces the stored detail and
 * prints nothing. */
void gm_progress_detail(gm_progress *p, const char *key, const char *detail);

/* Ends a step. done: detail NULL keeps the one set by gm_progress_detail.
 * fail: message says what went wrong. skip: reason may be NULL. An unknown key
 * is a new step that starts and ends at once. A step ends once: a second done,
 * fail or skip of an ended step is ignored (start it again to retry). */
void gm_progress_done(gm_progress *p, const char *key, const char *detail);
void gm_progress_fail(gm_progress *p, const char *key, const char *message);
void gm_progress_skip(gm_progress *p, const char *key, const char *reason);

/* A free line printed above the live block ("attempt 2: ..."). */
void gm_progress_note(gm_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Stops the ticker, prints steps still running as halted and the summary,
 * shows the cursor again (TTY) and frees everything. Safe on NULL. Must not
 * race with other calls on p. */
void gm_progress_free(gm_progress *p);

/* Counts of steps by state, for the caller's exit status or summary. Any out_
 * may be NULL. */
void gm_progress_counts(gm_progress *p, int *out_running, int *out_done, int *out_failed,
                        int *out_skipped);

/* Replaces the clock (monotonic milliseconds) and restarts the display's time
 * origin; for tests, before any step. now_ms NULL restores gm_now_ms. The
 * ticker still paces itself on the real clock. */
void gm_progress_set_clock(gm_progress *p, int64_t (*now_ms)(void *ctx), void *ctx);

/* Formats a duration: "0.8s", "59.9s", "1m02s", "1h00m05s" (rounded to the
 * unit shown; negative counts as 0). Returns out. */
const char *gm_progress_format_elapsed(int64_t ms, char *out, size_t size);

#endif
