/*
 * le.h — little-endian encoding of the on-disk formats (WAL records,
 * checkpoints, META).  Byte by byte, so it is correct on any host and any
 * alignment; compilers turn each into one load or store on x86-64.
 */
#ifndef CIDSTORE_UTIL_LE_H
#define CIDSTORE_UTIL_LE_H

#include <stdint.h>

#include "cidstore.h"

static inline void le_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void le_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void le_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t le_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t le_get32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint64_t le_get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* A cid as its four words w[0..3], each little-endian (32 bytes). */
static inline void le_put_cid(uint8_t *p, const cid_t *c)
{
	for (int i = 0; i < 4; i++)
		le_put64(p + 8 * i, c->w[i]);
}

static inline void le_get_cid(const uint8_t *p, cid_t *c)
{
	for (int i = 0; i < 4; i++)
		c->w[i] = le_get64(p + 8 * i);
}

#endif
