"""Point classes the gas plugin adds to the core's vocabulary."""

GAS_DEVICE_ALARM_1 = "gas_device_alarm_1"  # the detector's own level-1 alarm flag
GAS_DEVICE_ALARM_2 = "gas_device_alarm_2"  # the detector's own level-2 alarm flag
GAS_SENSOR_FAULT = "gas_sensor_fault"
GAS_OVER_RANGE = "gas_over_range"  # concentration beyond full scale (> 100 %LEL)
GAS_END_OF_LIFE = "gas_end_of_life"  # the device says its sensor is spent
GAS_CHANNEL_STATUS = "gas_channel_status"  # a controller channel's status code
GAS_POWER_FAULT = "gas_power_fault"  # controller main / backup power
SENSOR_LIFE = "gas_sensor_life"  # remaining sensor life, days
CALIBRATION_DUE = "gas_calibration_due"  # days until calibration is due
VALVE_COMMAND = "valve_command"
FAN_COMMAND = "fan_command"
ALARM_SETTING = "alarm_setting"

POINT_CLASSES = [
    GAS_DEVICE_ALARM_1, GAS_DEVICE_ALARM_2, GAS_SENSOR_FAULT, GAS_OVER_RANGE, GAS_END_OF_LIFE,
    GAS_CHANNEL_STATUS, GAS_POWER_FAULT, SENSOR_LIFE, CALIBRATION_DUE, VALVE_COMMAND, FAN_COMMAND, ALARM_SETTING,
]
