# cmake -DPROGRAM=<path of livecast-bench-aggregator> -P bench_aggregator_smoke.cmake
# The Aggregator benchmark once in --quick mode (a few seconds): it exits 0
# only when its paced run lost no event and every quantile was within its
# stated accuracy, and it must print all three of its tables. Its timings
# are not checked: they mean nothing on a shared CI machine.
cmake_minimum_required(VERSION 3.21)

execute_process(COMMAND "${PROGRAM}" --quick RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}")
if(NOT status EQUAL 0)
  message(FATAL_ERROR "livecast-bench-aggregator --quick exited with ${status}: ${err}")
endif()
foreach(heading IN ITEMS "record() cost per event" "2 threads, own metrics" "CPU at " "Quantile error" "bimodal")
  string(FIND "${out}" "${heading}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "livecast-bench-aggregator --quick printed no \"${heading}\"")
  endif()
endforeach()
