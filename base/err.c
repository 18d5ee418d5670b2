/* err.c - tq_strerror and tq_errname, generated from the one list in tq/err.h. */
#include "tq/err.h"

const char *tq_strerror(tq_err err)
{
	switch (err) {
#define TQ_ERR_STR_(name, num, text) \
	case TQ_##name:              \
		return text;
		TQ_ERRORS(TQ_ERR_STR_)
#undef TQ_ERR_STR_
	}
	return "unknown error";
}

const char *tq_errname(tq_err err)
{
	switch (err) {
#define TQ_ERR_NAME_(name, num, text) \
	case TQ_##name:               \
		return #name;
		TQ_ERRORS(TQ_ERR_NAME_)
#undef TQ_ERR_NAME_
	}
	return "EUNKNOWN";
}
