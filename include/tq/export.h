/* TQ_EXPORT marks the public API; everything else is hidden from the shared library. */
#ifndef TQ_EXPORT_H
#define TQ_EXPORT_H

#if defined(TQ_BUILDING) && defined(__GNUC__)
#define TQ_EXPORT __attribute__((visibility("default")))
#else
#define TQ_EXPORT
#endif

#endif
