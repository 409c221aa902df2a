/*
 * Power-loss recorder, preloaded into border-release by tests/powerloss.rs.
 *
 * A disk that loses power keeps what was fsynced and nothing else: a file's bytes as they were
 * at its last fsync (or fdatasync), and a folder's names as they were at the folder's last
 * fsync. This library passes every such call through and, when it succeeds on something under
 * POWERLOSS_ROOT, copies that state into POWERLOSS_RECORD:
 *   f<dev>-<ino>   the file's bytes at the fsync
 *   d<dev>-<ino>   the folder's entries at the fsync, a line each: "<kind> <dev>-<ino> <name>",
 *                  kind f (file) or d (folder)
 * The test rebuilds the disk from those records and the state before the run. sync_file_range
 * is not a durability barrier (it neither writes metadata nor flushes the disk's cache), so it
 * records nothing; sync and syncfs are not used by the product and record nothing either.
 *
 * POWERLOSS_DIRS=journal records every folder under the root at each successful fsync, as a
 * journalling filesystem (ext4, XFS) makes names durable with any fsync; by default a name is
 * durable only once its own folder is fsynced, the strict reading of POSIX.
 * POWERLOSS_STOP_AFTER=N kills the process (SIGKILL) right after the Nth recorded fsync.
 * POWERLOSS_TRACE=<file> appends a line per fsync under the root: thread, path, size.
 *
 * POWERLOSS_FAIL_FSYNC=N makes the Nth fsync or fdatasync under the root that has something
 * to write (see is_clean) fail with EIO
 * (without syncing anything), as a disk that fails a write does; POWERLOSS_FAIL_WHEN=<path>
 * fails the first one after <path> exists; POWERLOSS_FAIL_THREAD=<name> counts and fails only
 * those of the thread of that name. Later ones succeed again, as Linux's do after a
 * failed writeback: the caller must not take that for its lost writes having reached the disk.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static atomic_long fsync_count;
static atomic_int failed_on_cue;
static atomic_long recorded_count;

static int under_root(int fd, char *path, size_t size) {
    const char *root = getenv("POWERLOSS_ROOT");
    if (!root || !getenv("POWERLOSS_RECORD"))
        return 0;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t length = readlink(link, path, size - 1);
    if (length < 0)
        return 0;
    path[length] = 0;
    size_t root_length = strlen(root);
    return strncmp(path, root, root_length) == 0 &&
           (path[root_length] == '/' || path[root_length] == 0);
}

/* Writes `record` atomically: a temporary file of this thread, then a rename. */
static FILE *record_open(const char *name, char *temporary, size_t size) {
    snprintf(temporary, size, "%s/.%s.%ld", getenv("POWERLOSS_RECORD"), name,
             (long)syscall(SYS_gettid));
    return fopen(temporary, "w");
}

static void record_close(FILE *out, const char *temporary, const char *name) {
    char final[PATH_MAX];
    snprintf(final, sizeof final, "%s/%s", getenv("POWERLOSS_RECORD"), name);
    if (fclose(out) != 0 || rename(temporary, final) != 0) {
        fprintf(stderr, "powerloss shim: cannot record %s\n", final);
        abort();
    }
}

static void record_file(int fd, const struct stat *st) {
    char name[64], temporary[PATH_MAX];
    snprintf(name, sizeof name, "f%lu-%lu", (unsigned long)st->st_dev, (unsigned long)st->st_ino);
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    /* Opened again to read it whatever the mode of `fd`; the offset of `fd` is left alone. */
    int in = open(link, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        fprintf(stderr, "powerloss shim: cannot read back fd %d\n", fd);
        abort();
    }
    FILE *out = record_open(name, temporary, sizeof temporary);
    if (!out)
        abort();
    char buffer[1 << 16];
    ssize_t got;
    while ((got = read(in, buffer, sizeof buffer)) > 0)
        if (fwrite(buffer, 1, (size_t)got, out) != (size_t)got)
            abort();
    if (got < 0)
        abort();
    close(in);
    record_close(out, temporary, name);
}

static void record_dir(const char *path, const struct stat *st) {
    char name[64], temporary[PATH_MAX];
    snprintf(name, sizeof name, "d%lu-%lu", (unsigned long)st->st_dev, (unsigned long)st->st_ino);
    DIR *dir = opendir(path);
    if (!dir)
        abort();
    FILE *out = record_open(name, temporary, sizeof temporary);
    if (!out)
        abort();
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        struct stat child;
        if (fstatat(dirfd(dir), entry->d_name, &child, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* removed meanwhile */
        char kind = S_ISDIR(child.st_mode) ? 'd' : S_ISREG(child.st_mode) ? 'f' : 0;
        if (kind)
            fprintf(out, "%c %lu-%lu %s\n", kind, (unsigned long)child.st_dev,
                    (unsigned long)child.st_ino, entry->d_name);
    }
    closedir(dir);
    record_close(out, temporary, name);
}

/*
 * After a failed writeback Linux drops the failed pages' dirtiness: those bytes never reach the
 * disk, and each file description that was open on the file when it failed gets the error from
 * its next fsync, once; a description opened later gets success. So a failed file is never
 * recorded again here (stricter than Linux, which keeps later writes), and the descriptions open
 * on it then owe an EIO.
 */
#define FAILED_MAX 64
static dev_t failed_dev[FAILED_MAX];
static ino_t failed_ino[FAILED_MAX];
static atomic_int failed_count;
static atomic_char owes_error[4096];

static int failed_before(const struct stat *st) {
    int count = atomic_load(&failed_count);
    for (int i = 0; i < count && i < FAILED_MAX; i++)
        if (failed_dev[i] == st->st_dev && failed_ino[i] == st->st_ino)
            return 1;
    return 0;
}

static void fail(int failing_fd, const struct stat *st) {
    if (failed_before(st))
        return;
    int slot = atomic_fetch_add(&failed_count, 1);
    if (slot >= FAILED_MAX)
        abort();
    failed_dev[slot] = st->st_dev;
    failed_ino[slot] = st->st_ino;
    DIR *fds = opendir("/proc/self/fd");
    if (!fds)
        abort();
    struct dirent *entry;
    while ((entry = readdir(fds)) != NULL) {
        int fd = atoi(entry->d_name);
        struct stat other;
        if (entry->d_name[0] == '.' || fd == failing_fd || fd == dirfd(fds) || fd >= 4096)
            continue;
        if (fstat(fd, &other) == 0 && other.st_dev == st->st_dev && other.st_ino == st->st_ino)
            atomic_store(&owes_error[fd], 1);
    }
    closedir(fds);
}

/*
 * Only an fsync with something to write can fail: one on a file unchanged (size and times)
 * since its last successful fsync here is clean, and is neither failed nor counted.
 */
#define CLEAN_MAX 4096
static struct clean {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} clean[CLEAN_MAX];
static pthread_mutex_t clean_lock = PTHREAD_MUTEX_INITIALIZER;

static struct clean *clean_slot(const struct stat *st) {
    for (int i = 0; i < CLEAN_MAX; i++)
        if (clean[i].ino == 0 || (clean[i].dev == st->st_dev && clean[i].ino == st->st_ino))
            return &clean[i];
    return NULL;
}

static int is_clean(const struct stat *st) {
    pthread_mutex_lock(&clean_lock);
    struct clean *slot = clean_slot(st);
    int found = slot && slot->ino == st->st_ino && slot->dev == st->st_dev &&
                slot->size == st->st_size && slot->mtime.tv_sec == st->st_mtim.tv_sec &&
                slot->mtime.tv_nsec == st->st_mtim.tv_nsec &&
                slot->ctime.tv_sec == st->st_ctim.tv_sec &&
                slot->ctime.tv_nsec == st->st_ctim.tv_nsec;
    pthread_mutex_unlock(&clean_lock);
    return found;
}

static void mark_clean(const struct stat *st) {
    pthread_mutex_lock(&clean_lock);
    struct clean *slot = clean_slot(st);
    if (slot)
        *slot = (struct clean){st->st_dev, st->st_ino, st->st_size, st->st_mtim, st->st_ctim};
    pthread_mutex_unlock(&clean_lock);
}

/* Records every folder under `path` (for POWERLOSS_DIRS=journal: names durable with any fsync,
 * as a journalling filesystem commits them). */
static void record_tree(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return;
    record_dir(path, &st);
    DIR *dir = opendir(path);
    if (!dir)
        return;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        if (entry->d_type == DT_DIR) {
            char child[PATH_MAX];
            snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
            record_tree(child);
        }
    }
    closedir(dir);
}

static int synced_alone(int fd, int (*real)(int), const char *path, const struct stat *st);

/*
 * One fsync under the root at a time: a failure and the fsyncs it must be reported to are
 * ordered, as Linux orders them through the file's error sequence.
 */
static pthread_mutex_t sync_lock = PTHREAD_MUTEX_INITIALIZER;

static int synced(int fd, int (*real)(int)) {
    char path[PATH_MAX];
    struct stat st;
    if (!under_root(fd, path, sizeof path) || fstat(fd, &st) != 0)
        return real(fd);
    pthread_mutex_lock(&sync_lock);
    int result = synced_alone(fd, real, path, &st);
    int saved = errno;
    pthread_mutex_unlock(&sync_lock);
    errno = saved;
    return result;
}

static int synced_alone(int fd, int (*real)(int), const char *path, const struct stat *st) {
    const char *fail_nth = getenv("POWERLOSS_FAIL_FSYNC");
    const char *fail_when = getenv("POWERLOSS_FAIL_WHEN");
    int failing = 0;
    long nth = 0;
    const char *fail_thread = getenv("POWERLOSS_FAIL_THREAD");
    char thread[16] = "";
    if (fail_thread)
        pthread_getname_np(pthread_self(), thread, sizeof thread);
    if (!is_clean(st) && (!fail_thread || strcmp(thread, fail_thread) == 0)) {
        nth = atomic_fetch_add(&fsync_count, 1) + 1;
        failing = fail_nth && atol(fail_nth) == nth;
        if (fail_when && access(fail_when, F_OK) == 0 && !atomic_exchange(&failed_on_cue, 1))
            failing = 1;
    }
    if (failing) {
        fprintf(stderr, "powerloss shim: fsync %ld (%s) fails with EIO\n", nth, path);
        fail(fd, st);
        errno = EIO;
        return -1;
    }
    if (fd < 4096 && atomic_exchange(&owes_error[fd], 0)) {
        fprintf(stderr, "powerloss shim: fsync %ld (%s) reports the earlier EIO\n", nth, path);
        errno = EIO;
        return -1;
    }
    int result = real(fd);
    const char *trace = getenv("POWERLOSS_TRACE");
    FILE *out = trace ? fopen(trace, "a") : NULL;
    if (out) {
        char name[16] = "";
        pthread_getname_np(pthread_self(), name, sizeof name);
        fprintf(out, "%s fsync %s size %ld result %d\n", name, path, (long)st->st_size, result);
        fclose(out);
    }
    if (result != 0 || failed_before(st))
        return result;
    int saved = errno;
    mark_clean(st);
    if (S_ISREG(st->st_mode))
        record_file(fd, st);
    else if (S_ISDIR(st->st_mode))
        record_dir(path, st);
    if (getenv("POWERLOSS_DIRS") && strcmp(getenv("POWERLOSS_DIRS"), "journal") == 0)
        record_tree(getenv("POWERLOSS_ROOT"));
    const char *stop_after = getenv("POWERLOSS_STOP_AFTER");
    if (stop_after && atomic_fetch_add(&recorded_count, 1) + 1 >= atol(stop_after))
        kill(getpid(), SIGKILL);
    errno = saved;
    return result;
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return synced(fd, real);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return synced(fd, real);
}
