/*
 * The pod sandbox's init process for the local cluster's containerd (image dynoline-pause:local).
 *
 * It holds the pod's namespaces open and does nothing else: as PID 1 of the pod it reaps every child
 * that is reparented to it (so a pod sharing its PID namespace leaves no zombies), and it exits 0 on
 * SIGINT or SIGTERM so a stopped sandbox goes away at once instead of waiting for SIGKILL. Built with
 * `gcc -static` by tests/cluster/images.sh, so the image is this one binary and nothing else.
 *
 *   pause        sleep until signalled
 *   pause -v     print the version and exit
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAUSE_VERSION "dynoline-pause 1"

static void on_stop(int signo) {
    /* write(2) is async-signal-safe; stdio is not. */
    static const char msg[] = "pause: stopping on signal\n";
    (void)signo;
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    _exit(0);
}

static void on_child(int signo) {
    int saved = errno;
    (void)signo;
    /* One SIGCHLD may stand for several exits: reap until none is left. */
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static int handle(int signo, void (*handler)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    return sigaction(signo, &sa, NULL);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "-v") == 0) {
        puts(PAUSE_VERSION);
        return 0;
    }
    if (argc != 1) {
        fprintf(stderr, "usage: %s [-v]\n", argv[0]);
        return 2;
    }
    if (getpid() != 1) {
        fprintf(stderr, "pause: warning: not PID 1, orphans are not reparented to me\n");
    }
    if (handle(SIGINT, on_stop, 0) < 0 || handle(SIGTERM, on_stop, 0) < 0 ||
        handle(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART) < 0) {
        perror("pause: sigaction");
        return 1;
    }
    for (;;) {
        pause();
    }
}
