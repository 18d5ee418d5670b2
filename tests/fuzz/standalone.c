/*
 * standalone.c - a main() for the fuzz targets where libFuzzer is not
 * available (a compiler other than clang): runs every file named on the
 * command line, or found in a directory named there, through the target
 * once.  It fuzzes nothing; it replays the corpus as a regression test.
 * Arguments starting with '-' (libFuzzer's options) are ignored.
 */
#include "tests/fuzz/fuzz.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		return -1;
	}
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			cap = cap ? 2 * cap : 4096;
			uint8_t *b = realloc(buf, cap);
			if (b == NULL) {
				free(buf);
				fclose(f);
				return -1;
			}
			buf = b;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	/* an exact copy, so that a sanitizer sees reads past the end */
	uint8_t *exact = malloc(len ? len : 1);
	if (exact == NULL) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

static int run_path(const char *path, size_t *runs)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*runs)++;
		return run_file(path);
	}
	DIR *d = opendir(path);
	if (d == NULL) {
		perror(path);
		return -1;
	}
	int rc = 0;
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		if (de->d_name[0] == '.')
			continue;
		char sub[4096];
		snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
		if (run_path(sub, runs) != 0)
			rc = -1;
	}
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	size_t runs = 0;
	int rc = 0;
	for (int i = 1; i < argc; i++)
		if (argv[i][0] != '-' && run_path(argv[i], &runs) != 0)
			rc = 1;
	printf("Done %zu runs (replay only: built without libFuzzer)\n", runs);
	return rc;
}
