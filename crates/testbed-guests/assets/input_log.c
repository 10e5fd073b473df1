/*
 * Logs where the guest sees pointer buttons go down and up, so tests can prove that a click vmkit sent landed
 * where it was aimed — as the guest received it, not as the client sent it.
 *
 * Usage: input_log WIDTH HEIGHT. Reads every /dev/input/event* (evdev) and keeps a pointer in a WIDTH x HEIGHT
 * screen: absolute devices (QEMU's USB tablet) are scaled from their ABS_X/ABS_Y range; relative ones (QEMU's
 * PS/2 or USB mouse) are accumulated and clamped to the screen's edges, with no acceleration, as a pointer
 * on a bare screen would be. For each left-button press and release it prints one line,
 *     input_log: press X Y abs|rel
 *     input_log: release X Y abs|rel
 * to stdout and to the VGA console (/dev/tty1, so the screen changes, as a real application's would), and
 * "input_log: ready N" once N devices are open.
 *
 * Built statically by the tests (gcc, libc6-dev); the evdev structures are the kernel's stable UAPI.
 */
#include <fcntl.h>
#include <linux/input.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MAX_DEVICES 16

struct device {
    int fd;
    int absolute;
    int pending; /* a left-button change seen in the current report: 1 down, 0 up, -1 none */
    struct input_absinfo ax, ay;
};

static int width, height;
static long px, py;
static FILE *console;

static long clamp(long v, long max) {
    return v < 0 ? 0 : v > max ? max : v;
}

static long scale(int value, const struct input_absinfo *a, int size) {
    long range = (long)a->maximum - a->minimum;
    if (range <= 0)
        return 0;
    /* Nearest pixel: QEMU maps pixel p of a size-pixel screen to floor(p * range / size). */
    return clamp(((long)(value - a->minimum) * size + range / 2) / range, size - 1);
}

static void say(const char *what, const char *kind) {
    printf("input_log: %s %ld %ld %s\n", what, px, py, kind);
    fflush(stdout);
    if (console) {
        fprintf(console, "input_log: %s %ld %ld %s\n", what, px, py, kind);
        fflush(console);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: input_log WIDTH HEIGHT\n");
        return 2;
    }
    width = atoi(argv[1]);
    height = atoi(argv[2]);
    if (width <= 0 || height <= 0) {
        fprintf(stderr, "input_log: bad size\n");
        return 2;
    }
    console = fopen("/dev/tty1", "w");
    struct device devs[MAX_DEVICES];
    struct pollfd fds[MAX_DEVICES];
    int n = 0;
    for (int i = 0; i < 32 && n < MAX_DEVICES; i++) {
        char path[64];
        snprintf(path, sizeof path, "/dev/input/event%d", i);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        unsigned long keys[(KEY_MAX + 1) / (8 * sizeof(unsigned long)) + 1];
        memset(keys, 0, sizeof keys);
        ioctl(fd, EVIOCGBIT(EV_KEY, sizeof keys), keys);
        int has_left = (keys[BTN_LEFT / (8 * sizeof(unsigned long))] >> (BTN_LEFT % (8 * sizeof(unsigned long)))) & 1;
        if (!has_left) {
            close(fd);
            continue;
        }
        struct device *d = &devs[n];
        d->fd = fd;
        d->pending = -1;
        d->absolute = ioctl(fd, EVIOCGABS(ABS_X), &d->ax) == 0 && ioctl(fd, EVIOCGABS(ABS_Y), &d->ay) == 0 &&
                      d->ax.maximum > d->ax.minimum;
        fds[n].fd = fd;
        fds[n].events = POLLIN;
        n++;
    }
    printf("input_log: ready %d\n", n);
    fflush(stdout);
    if (n == 0)
        return 1;
    for (;;) {
        if (poll(fds, n, -1) < 0)
            continue;
        for (int i = 0; i < n; i++) {
            if (!(fds[i].revents & POLLIN))
                continue;
            struct input_event evs[64];
            ssize_t got = read(fds[i].fd, evs, sizeof evs);
            if (got <= 0)
                continue;
            struct device *d = &devs[i];
            const char *kind = d->absolute ? "abs" : "rel";
            for (size_t k = 0; k < (size_t)got / sizeof evs[0]; k++) {
                struct input_event *e = &evs[k];
                /* A report's events belong together and the drivers put the buttons first (psmouse, and HID
                 * in QEMU's report descriptors): a button change takes effect where the whole report puts the
                 * pointer, at its SYN_REPORT — as X and libinput apply a frame. */
                if (e->type == EV_ABS && e->code == ABS_X)
                    px = scale(e->value, &d->ax, width);
                else if (e->type == EV_ABS && e->code == ABS_Y)
                    py = scale(e->value, &d->ay, height);
                else if (e->type == EV_REL && e->code == REL_X)
                    px = clamp(px + e->value, width - 1);
                else if (e->type == EV_REL && e->code == REL_Y)
                    py = clamp(py + e->value, height - 1);
                else if (e->type == EV_KEY && e->code == BTN_LEFT && e->value != 2)
                    d->pending = e->value ? 1 : 0;
                else if (e->type == EV_SYN && e->code == SYN_REPORT && d->pending >= 0) {
                    say(d->pending ? "press" : "release", kind);
                    d->pending = -1;
                }
            }
        }
    }
}
