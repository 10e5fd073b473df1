/*
 * Gives the test guest a hardware cursor, as a desktop on virtio-gpu has one: a 64x64 ARGB cursor whose top-left
 * 16x24 pixels are opaque red (the rest transparent), hot spot (0,0), at (X, Y) on the first CRTC of
 * /dev/dri/card0. QEMU then defines the pointer for its VNC server, which sends the shape to clients that take
 * the Cursor pseudo-encoding instead of painting it into the framebuffer.
 *
 * Usage: drm_cursor X Y. Prints "drm_cursor: set" once the cursor is set, then sleeps: the process holds the DRM
 * master, and the cursor would go when it exits.
 *
 * Built statically by the test (no libdrm, whose headers Debian does not install by default): the few ioctl
 * structures it needs are the kernel's stable UAPI, written out here.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

struct card_res {
    uint64_t fb_id_ptr, crtc_id_ptr, connector_id_ptr, encoder_id_ptr;
    uint32_t count_fbs, count_crtcs, count_connectors, count_encoders;
    uint32_t min_width, max_width, min_height, max_height;
};

struct create_dumb {
    uint32_t height, width, bpp, flags, handle, pitch;
    uint64_t size;
};

struct map_dumb {
    uint32_t handle, pad;
    uint64_t offset;
};

struct cursor {
    uint32_t flags, crtc_id;
    int32_t x, y;
    uint32_t width, height, handle;
};

#define GETRESOURCES _IOWR('d', 0xA0, struct card_res)
#define CURSOR _IOWR('d', 0xA3, struct cursor)
#define CREATE_DUMB _IOWR('d', 0xB2, struct create_dumb)
#define MAP_DUMB _IOWR('d', 0xB3, struct map_dumb)
#define CURSOR_BO 0x01
#define CURSOR_MOVE 0x02

static void fail(const char *what) {
    perror(what);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: drm_cursor X Y\n");
        return 2;
    }
    int fd = open("/dev/dri/card0", O_RDWR | O_CLOEXEC);
    if (fd < 0) fail("open /dev/dri/card0");

    struct card_res res = {0};
    if (ioctl(fd, GETRESOURCES, &res) < 0) fail("GETRESOURCES");
    if (res.count_crtcs == 0) fail("no CRTC");
    uint32_t crtcs[16];
    struct card_res ids = {0};
    ids.crtc_id_ptr = (uint64_t)(uintptr_t)crtcs;
    ids.count_crtcs = res.count_crtcs < 16 ? res.count_crtcs : 16;
    if (ioctl(fd, GETRESOURCES, &ids) < 0) fail("GETRESOURCES (ids)");

    struct create_dumb bo = {.height = 64, .width = 64, .bpp = 32};
    if (ioctl(fd, CREATE_DUMB, &bo) < 0) fail("CREATE_DUMB");
    struct map_dumb map = {.handle = bo.handle};
    if (ioctl(fd, MAP_DUMB, &map) < 0) fail("MAP_DUMB");
    uint8_t *mem = mmap(0, bo.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)map.offset);
    if (mem == MAP_FAILED) fail("mmap");
    for (uint32_t y = 0; y < 64; y++) {
        uint32_t *row = (uint32_t *)(mem + (size_t)y * bo.pitch);
        for (uint32_t x = 0; x < 64; x++) row[x] = (x < 16 && y < 24) ? 0xFFFF0000u : 0;
    }

    struct cursor c = {
        .flags = CURSOR_BO | CURSOR_MOVE,
        .crtc_id = crtcs[0],
        .x = atoi(argv[1]),
        .y = atoi(argv[2]),
        .width = 64,
        .height = 64,
        .handle = bo.handle,
    };
    if (ioctl(fd, CURSOR, &c) < 0) fail("CURSOR");
    printf("drm_cursor: set\n");
    fflush(stdout);
    for (;;) pause();
}
