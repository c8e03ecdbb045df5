/* Terminal output on stderr: colour and TTY awareness (NO_COLOR honoured). */
#ifndef GM_UI_TERM_H
#define GM_UI_TERM_H

#include <stdbool.h>
#include <stdio.h>

typedef struct gm_term {
    FILE *out;  /* stderr */
    bool tty;   /* out is a terminal */
    bool color; /* ANSI colour allowed */
} gm_term;

/* Detects the TTY and colour settings for stream (NO_COLOR, TERM=dumb,
 * no_color_flag). */
void gm_term_init(gm_term *t, FILE *stream, bool no_color_flag);

/* Wraps text in an SGR sequence when colour is on ("1" bold, "31" red,
 * "32" green, "33" yellow, "2" dim). Returns a static-per-call-site-safe
 * pointer: the caller passes a buffer. */
const char *gm_term_style(const gm_term *t, const char *sgr, const char *text, char *buf,
                          size_t size);

#endif
