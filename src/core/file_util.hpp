#pragma once
#include "mmx/files.hpp"
