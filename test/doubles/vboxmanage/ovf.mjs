// TEST DOUBLE of VBoxManage: the OVF descriptor `VBoxManage export` writes, in the shape of public
// VirtualBox exports (see test/fixtures/ova/README.md): OVF 1.0 puts the disk and NIC in <Item>s,
// OVF 2.0 in <StorageItem>/<EthernetPortItem> with the sasd/epasd namespaces; File has no ovf:size;
// VirtualSystemType is virtualbox-2.2; memory is in MegaBytes.

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const OS_IDS = { Debian_64: 96, Ubuntu_64: 94, RedHat_64: 80, Oracle_64: 109, Linux_64: 101 };

export function buildOvf({ version, vsysName, machine, disks }) {
  const v2 = version === "2.0";
  const envNs = v2 ? "http://schemas.dmtf.org/ovf/envelope/2" : "http://schemas.dmtf.org/ovf/envelope/1";
  const ns = [
    `xmlns="${envNs}"`,
    `xmlns:ovf="${envNs}"`,
    `xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"`,
    `xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"`,
    `xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"`,
    `xmlns:vbox="http://www.virtualbox.org/ovf/machine"`,
    ...(v2
      ? [
          `xmlns:epasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData.xsd"`,
          `xmlns:sasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_StorageAllocationSettingData.xsd"`,
        ]
      : []),
  ].join(" ");
  const files = disks.map((d, i) => `    <File ovf:id="file${i + 1}" ovf:href="${esc(d.href)}"/>`).join("\n");
  const diskEls = disks
    .map(
      (d, i) =>
        `    <Disk ovf:capacity="${d.capacity}" ovf:diskId="vmdisk${i + 1}" ovf:fileRef="file${i + 1}" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized" vbox:uuid="${d.uuid}"/>`,
    )
    .join("\n");
  let id = 1;
  const items = [];
  const rasd = (fields, tag = "Item", p = "rasd") =>
    `      <${tag}>\n${Object.entries(fields)
      .map(([k, val]) => `        <${p}:${k}>${esc(val)}</${p}:${k}>`)
      .join("\n")}\n      </${tag}>`;
  items.push(rasd({ Caption: `${machine.cpus} virtual CPU`, Description: "Number of virtual CPUs", ElementName: `${machine.cpus} virtual CPU`, InstanceID: id++, ResourceType: 3, VirtualQuantity: machine.cpus }));
  items.push(
    rasd({ AllocationUnits: "MegaBytes", Caption: `${machine.memory} MB of memory`, Description: "Memory Size", ElementName: `${machine.memory} MB of memory`, InstanceID: id++, ResourceType: 4, VirtualQuantity: machine.memory }),
  );
  const sataId = id++;
  items.push(rasd({ Address: 0, Caption: "sataController0", Description: "SATA Controller", ElementName: "sataController0", InstanceID: sataId, ResourceSubType: "AHCI", ResourceType: 20 }));
  disks.forEach((d, i) => {
    const f = { AddressOnParent: i, Caption: `disk${i + 1}`, Description: "Disk Image", ElementName: `disk${i + 1}`, HostResource: `/disk/vmdisk${i + 1}`, InstanceID: id++, Parent: sataId, ResourceType: 17 };
    items.push(v2 ? rasd(f, "StorageItem", "sasd") : rasd(f));
  });
  const nic = { AutomaticAllocation: "true", Caption: "Ethernet adapter on 'NAT'", Connection: "NAT", ElementName: "Ethernet adapter on 'NAT'", InstanceID: id++, ResourceSubType: "E1000", ResourceType: 10 };
  items.push(v2 ? rasd(nic, "EthernetPortItem", "epasd") : rasd(nic));
  return `<?xml version="1.0"?>
<Envelope ovf:version="${v2 ? "2.0" : "1.0"}" xml:lang="en-US" ${ns}>
  <References>
${files}
  </References>
  <DiskSection>
    <Info>List of the virtual disks used in the package</Info>
${diskEls}
  </DiskSection>
  <NetworkSection>
    <Info>Logical networks used in the package</Info>
    <Network ovf:name="NAT">
      <Description>Logical network used by this appliance.</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="${esc(vsysName)}">
    <Info>A virtual machine</Info>
    <OperatingSystemSection ovf:id="${OS_IDS[machine.ostype] ?? 101}">
      <Info>The kind of installed guest operating system</Info>
      <Description>${esc(machine.ostype)}</Description>
      <vbox:OSType ovf:required="false">${esc(machine.ostype)}</vbox:OSType>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements for a virtual machine</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>${esc(vsysName)}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>virtualbox-2.2</vssd:VirtualSystemType>
      </System>
${items.join("\n")}
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`;
}
